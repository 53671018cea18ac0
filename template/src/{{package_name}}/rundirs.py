"""Where a fit writes: run directories in `output_dir`, the one a SLURM or torchrun job names, the
checkpoint a resumed or restarted fit continues from, and the lock that keeps a run directory to
the one fit writing it."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import yaml
from lightning.fabric.plugins.environments.slurm import SLURMEnvironment
from lightning.fabric.plugins.environments.torchelastic import TorchElasticEnvironment

from . import PROGRAM
from .callbacks import LAST_CHECKPOINT
from .config import Config
from .errors import ConfigError

log = logging.getLogger(__name__)

RUN_DIR_ENV = f"{PROGRAM.upper()}_RUN_DIR"
"""Set while `fit` runs, so that the DDP worker processes it launches join its run directory."""
HPC_CHECKPOINTS = "hpc_ckpt_*.ckpt"
"""What Lightning saves in the run directory when SLURM sends the requeue signal (SIGUSR1)."""
LOCK_FILE = "fit.lock"
"""In each run directory: locked by the fit writing it, and naming that process."""
TRIAL_FILE = "trial.json"
"""In the run directory of each `tune` trial (`tuning.py`), which lies in its study's folder."""


RUN_NAME = re.compile(r"^(\d{8}-\d{6})(?:-(\d+))?$")
"""A run directory's name, `<date>-<time>[-n]`: its order is the order the runs were started in."""


def last_checkpoint(output_dir: Path) -> Path:
    """`last.ckpt` of the newest run in `output_dir` that has one: what `fit --resume last` continues.
    A newer run that stopped before writing one (it crashed at its start, say) is passed over, in
    one warning that names both runs."""
    runs = sorted(
        ((match.group(1), int(match.group(2) or 0)), folder)
        for folder in (output_dir.iterdir() if output_dir.is_dir() else [])
        if (match := RUN_NAME.match(folder.name)) and (folder / "config.yaml").is_file()
    )
    if not runs:
        raise ConfigError(f"--resume last: no run in output_dir {output_dir} to resume")
    newest = runs[-1][1]
    for _, run in reversed(runs):
        checkpoint = run / "checkpoints" / LAST_CHECKPOINT
        if checkpoint.is_file():
            if run != newest:
                log.warning(
                    "--resume last: the newest run %s has no checkpoints/%s; resuming %s, the newest run that has one",
                    newest,
                    LAST_CHECKPOINT,
                    run,
                )
            return checkpoint
    raise ConfigError(
        f"--resume last: no run in output_dir {output_dir} has a checkpoints/{LAST_CHECKPOINT} "
        f"(the newest, {newest}, stopped before writing one); start a new fit"
    )


def job_name() -> str | None:
    """The run directory's name when SLURM or torchrun started this process, the same in every
    process of the job without any communication, and again when the job is restarted:
    `slurm-<job id>` (`slurm-<array job id>_<task id>` in an array), or torchrun's `--rdzv-id`.
    None when the process started itself (Lightning then launches the other devices' processes).
    SLURM is looked for first, as Lightning does."""
    if SLURMEnvironment.detect():
        array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        job = f"{array_job}_{task}" if array_job else os.environ.get("SLURM_JOB_ID", "")
        source, prefix = "SLURM_JOB_ID", "slurm-"
    elif TorchElasticEnvironment.detect():
        job, source, prefix = os.environ["TORCHELASTIC_RUN_ID"], "torchrun --rdzv-id", ""
        if job == "none":  # torchrun's default: the same for every job
            raise ConfigError("torchrun --rdzv-id: not given; pass --rdzv-id NAME, which names the run directory")
    else:
        return None
    if not re.fullmatch(r"\w[\w.-]*", job):
        raise ConfigError(f"{source}: {job!r} cannot name a run directory (letters, digits, '_', '.', '-')")
    return prefix + job


def job_run_dir(output_dir: Path, job: str, config: Config) -> Path:
    """The run directory of this fit of the job `job`: `<output_dir>/<job>`, unless another fit of
    the job (a second `fit` in one SLURM job, a torchrun id used again) wrote it with another
    config; then the first of `<job>-2`, `<job>-3`, ... that is new or holds this config. Every
    process of the fit finds the same one, and so does the job when it is restarted."""
    wanted = config.to_data()
    for attempt in range(1, 1000):
        run_dir = output_dir / (job if attempt == 1 else f"{job}-{attempt}")
        saved = run_dir / "config.yaml"
        if not saved.is_file() or _saved_config(saved) == wanted:
            return run_dir
    raise ConfigError(f"output_dir: {output_dir} holds 999 runs of the job {job}, each with another config")


def _saved_config(path: Path) -> dict[str, object] | None:
    """A run's `config.yaml` as plain data, None when it is unreadable."""
    try:
        return Config.from_data(yaml.safe_load(path.read_text(encoding="utf-8"))).to_data()
    except (OSError, yaml.YAMLError, ConfigError, TypeError):
        return None


def job_checkpoint(run_dir: Path, resume: Path | None) -> Path | None:
    """The checkpoint a job started by SLURM or torchrun continues from. A job restarted under its
    id (a SLURM requeue, a torchrun restart or rerun) comes back to its run directory and continues
    from the newest of Lightning's hpc checkpoints there and `last.ckpt`; so does a restarted job
    that was given `--resume`, which would otherwise start over from that checkpoint each time.
    Passing the checkpoint on keeps Lightning from loading an hpc checkpoint by itself, past the
    checks and the logger's resume step."""
    counts = ("SLURM_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT")
    restarted = any(int(os.environ.get(name) or 0) > 0 for name in counts)
    if resume is not None and not restarted:
        return resume
    candidates = [*run_dir.glob(HPC_CHECKPOINTS), run_dir / "checkpoints" / LAST_CHECKPOINT, *filter(None, [resume])]
    return max((path for path in candidates if path.is_file()), key=lambda path: path.stat().st_mtime_ns, default=None)


def run_dir_of(checkpoint: Path | None) -> Path | None:
    """The run directory a checkpoint was written in (`<run>/checkpoints/<name>.ckpt`), if it is one."""
    if checkpoint is None or checkpoint.resolve().parent.name != "checkpoints":
        return None
    run_dir = checkpoint.resolve().parent.parent
    return run_dir if (run_dir / "config.yaml").is_file() else None


def new_run_dir(output_dir: Path) -> Path:
    """A new, uniquely named run directory `<output_dir>/<date>-<time>[-n]`."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    output_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        run_dir = output_dir / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir
    raise ConfigError(f"output_dir: could not create a new run directory in {output_dir}")


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold `<run_dir>/fit.lock` while a fit writes the run directory: a second fit of the same run
    (two resumes at once) is refused, naming the process that holds it, instead of doubling every
    metrics row and overwriting the checkpoints. The operating system releases the lock when its
    process ends, however it ends, so a killed fit leaves no stale lock behind."""
    with (run_dir / LOCK_FILE).open("a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise ConfigError(
                f"{run_dir}: in use by {holder}, a fit writing this run; wait for it to end or stop it"
            ) from None
        lock.truncate(0)
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        lock.flush()
        yield


def trial_study(run_dir: Path) -> Path | None:
    """The study folder a `tune` trial's run directory lies in; None for any other run directory."""
    return run_dir.parent if (run_dir / TRIAL_FILE).is_file() else None
