"""The `tune` command: a hyper-parameter search with Optuna, each trial a normal fit.

The study lives in an Optuna RDB storage: a SQLite file in its folder `<output_dir>/<study_name>/`
unless `tune.storage` names a database server. Running `tune` again continues it, and several
workers (processes, machines) running `tune` on one storage share its trials. A trial is a fit of
the config with the keys of `tune.space` drawn, in its own run directory `trial-NNNN/` of the study's
folder, whose `trial.json` says how it ended; the pruner stops one whose validation metric falls
behind after an epoch (`PruneTrial`); one that fails is marked failed with its reason and the search
goes on. A trial whose worker died (SIGKILL, a lost node) is marked failed, by the next worker on its
machine at once, elsewhere by Optuna's heartbeat, so that the study still ends at `tune.n_trials`
finished (complete or pruned) trials. The search space is `search_space.py`'s, the results
`study_results.py`'s.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from . import runner
from .config import Config
from .config_sources import load_config
from .errors import ConfigError, RunStoppedError, first_line
from .files import process_running, write_atomic
from .rundirs import TRIAL_FILE
from .search_space import check_space, pruner, sampler, suggest

log = logging.getLogger(__name__)

STUDY_DATABASE = "study.db"
"""The study's SQLite file in its folder, when `tune.storage` is unset."""
HEARTBEAT_S = 30
"""How often a running trial tells the storage it is alive; one silent for `GRACE_S` is failed."""
GRACE_S = 120
SQLITE_WAIT_S = 60
"""How long a worker waits for another one that is writing the SQLite file."""
FAILURES_IN_A_ROW = 3
"""A worker stops after this many failed trials in a row: the config, not the draw, is at fault."""
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
"""The finished trials that `tune.n_trials` counts: a failed trial is tried again."""
NOT_SEARCHED = ("tune.n_trials", "tune.timeout_s", "tune.seed", "tune.storage", "output_dir")
"""Keys a later run of `tune` may change for a study; any other change would make its trials incomparable."""


def tune(config: Config) -> optuna.Study:
    """Run trials until the study has `tune.n_trials` finished ones (this worker and the others
    together), or `tune.timeout_s` has passed; the study, for `study_results`."""
    check_space(config)
    study, storage = open_study(config)
    fail_abandoned(study, storage, study_folder(config))
    settings = config.tune
    if _count(study, (*COUNTED, TrialState.RUNNING)) >= settings.n_trials:
        return study
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial's end is printed here, in one line
    stop = optuna.study.MaxTrialsCallback(settings.n_trials, states=(*COUNTED, TrialState.RUNNING))
    study.optimize(
        Objective(config), timeout=settings.timeout_s, callbacks=[stop, _StopOnFailures()], gc_after_trial=True
    )
    return study


def study_folder(config: Config) -> Path:
    return config.output_dir / config.tune.study_name


def open_study(config: Config, create: bool = True) -> tuple[optuna.Study, RDBStorage]:
    """The study of `tune.study_name` in its storage, created on first use (unless not to `create`);
    a study started with another config (other than `NOT_SEARCHED`) is refused, naming the first
    key that differs."""
    settings = config.tune
    folder = study_folder(config)
    folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line for each study created or loaded
    url = settings.storage or f"sqlite:///{(folder / STUDY_DATABASE).resolve()}"
    shown = make_url(url).render_as_string(hide_password=True)
    with _held(folder / "study.lock"):  # two workers starting at once create the tables and study once
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(
                    url,
                    engine_kwargs={"connect_args": {"timeout": SQLITE_WAIT_S}} if url.startswith("sqlite") else None,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                )
        except Exception as error:  # a bad URL, a missing driver, a server that does not answer
            raise ConfigError(f"tune.storage: {shown} cannot be opened ({first_line(error)})") from None
        try:
            storage.get_study_id_from_name(settings.study_name)
            new = False
        except KeyError:
            new = True
        if new and not create:
            raise ConfigError(f"tune.study_name: {shown} has no study {settings.study_name} yet; `tune` starts it")
        if new and any(folder.glob("trial-*")):
            raise ConfigError(
                f"tune.study_name: {folder} holds trials of a study that {shown} does not have; "
                "choose another study_name, or the storage that has it"
            )
        study = optuna.create_study(
            storage=storage,
            study_name=settings.study_name,
            direction="minimize" if config.callbacks.monitor_mode == "min" else "maximize",
            pruner=pruner(config),
            load_if_exists=True,
        )
        study.sampler = sampler(config, len(study.trials))
        searched = _searched(config)
        if new:
            study.set_user_attr("config", searched)
        started = study.user_attrs["config"]
        for key in sorted(set(started) | set(searched)):
            if started.get(key) != searched.get(key):
                raise ConfigError(
                    f"{key}: study {settings.study_name} was started with {json.dumps(started.get(key))}, and its "
                    f"trials compare only under one config (got {json.dumps(searched.get(key))}); "
                    "a new tune.study_name starts a new study"
                )
    return study, storage


def fail_abandoned(study: optuna.Study, storage: RDBStorage, folder: Path) -> None:
    """Mark failed each running trial whose worker on this machine no longer runs (killed, or its
    machine restarted); Optuna's heartbeat does the same for other machines' after `GRACE_S`."""
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if host != socket.gethostname() or not pid.isdigit() or process_running(int(pid)):
            continue
        reason = f"its worker (pid {pid}) ended while it ran"
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "reason", reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        record = folder / trial_run_name(trial.number) / TRIAL_FILE
        if record.is_file():
            _write_record(
                record.parent, {**json.loads(record.read_text(encoding="utf-8")), "state": "FAIL", "reason": reason}
            )
        log.warning("trial %d: marked failed, %s", trial.number, reason)


def trial_run_name(number: int) -> str:
    return f"trial-{number:04d}"


class Objective:
    """One trial: the config with the drawn values, fitted in the trial's run directory; its value
    is the best checkpoint's validation metric (`callbacks.monitor`)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.folder = study_folder(config)

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        params = {key: suggest(trial, key, distribution) for key, distribution in self.config.tune.space.items()}
        run_dir = self.folder / trial_run_name(trial.number)
        run_dir.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {
            "study": self.config.tune.study_name, "number": trial.number, "params": params, "state": "RUNNING"
        }  # fmt: skip
        _write_record(run_dir, record)
        monitor = self.config.callbacks.monitor
        try:
            one_device = [("trainer.devices", 1)] if self.config.trainer.devices == "auto" else []  # no DDP per trial
            trial_config = load_config(overrides=[*params.items(), *one_device], base=self.config.to_data())
            runner.fit(trial_config, into=run_dir, callbacks=[PruneTrial(trial, monitor)])
            value = float(json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["val"][monitor])
        except optuna.TrialPruned as pruned:
            trial.set_user_attr("reason", str(pruned))
            _write_record(run_dir, record | {"state": "PRUNED", "reason": str(pruned)})
            print(f"trial {trial.number}: pruned, {pruned} ({_shown(params)})", flush=True)
            raise
        except RunStoppedError as error:
            if error.exit_code != 1:  # a signal: the worker stops, the trial is failed by Optuna
                _write_record(run_dir, record | {"state": "FAIL", "reason": str(error)})
                raise
            return self._failed(trial, run_dir, record, str(error))
        except Exception as error:  # the search goes on; the reason stays in the trial's record
            log.debug("trial %d failed", trial.number, exc_info=True)
            return self._failed(trial, run_dir, record, first_line(error))
        _write_record(run_dir, record | {"state": "COMPLETE", "value": value})
        print(f"trial {trial.number}: {monitor} {value:.4f} ({_shown(params)})", flush=True)
        return value

    def _failed(self, trial: optuna.Trial, run_dir: Path, record: dict[str, Any], reason: str) -> float:
        trial.set_user_attr("reason", reason)
        _write_record(run_dir, record | {"state": "FAIL", "reason": reason})
        print(f"trial {trial.number}: failed, {reason}", flush=True)
        return float("nan")  # Optuna marks a trial that returns NaN failed, without a traceback


class PruneTrial(Callback):
    """Reports the monitored validation metric to Optuna after each validation epoch of the fit, and
    stops a trial the pruner gives up on by raising `optuna.TrialPruned`; the run directory keeps
    what the fit wrote until then."""

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        self.trial = trial
        self.monitor = monitor

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING or value is None:
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.monitor} {float(value):.4f} after epoch {trainer.current_epoch + 1}")


class _StopOnFailures:
    """Stops the worker after `FAILURES_IN_A_ROW` failed trials of its own in a row."""

    def __init__(self) -> None:
        self.in_a_row = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.in_a_row = self.in_a_row + 1 if trial.state == TrialState.FAIL else 0
        if self.in_a_row >= FAILURES_IN_A_ROW:
            study.stop()
            raise ConfigError(
                f"tune: {self.in_a_row} trials in a row failed, the last one: {trial.user_attrs.get('reason')}"
            )


def _searched(config: Config) -> dict[str, Any]:
    """What the study's trials share: the flat config but for `NOT_SEARCHED`, as JSON values."""
    return {key: value for key, value in json.loads(json.dumps(config.flat())).items() if key not in NOT_SEARCHED}


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in params.items()
    )


def _write_record(run_dir: Path, record: dict[str, Any]) -> None:
    write_atomic(run_dir / TRIAL_FILE, json.dumps(record, indent=2) + "\n", "the trial's record")


@contextmanager
def _held(lock_file: Path) -> Iterator[None]:
    with lock_file.open("a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
