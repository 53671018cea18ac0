"""The workflows behind the CLI: fit, validate, test and predict, the same for every task.

Everything that can be wrong with the user's input (config, data folders, backbone name,
checkpoint path) is checked before a run directory is created, and raised as `ConfigError`.
What differs per task lives in the task's data module, model and prediction writer; the `check`
and `export` commands have their own modules (`checking.py`, `export_gate.py`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from lightning import Callback, Trainer, seed_everything
from lightning.pytorch.utilities import rank_zero_only

from .callbacks import MetricsFile, build_callbacks
from .checkpoints import logged_steps, read_checkpoint
from .compatibility import check_classes, check_resumable, load_model
from .config import Config
from .data.datamodule import predict_dataloader
from .data.images import list_images
from .errors import ConfigError, first_line
from .files import write_atomic
from .loggers import build_logger, check_backend
from .models.backbones import normalized
from .models.network import backbone_name
from .models.weights import initialise
from .predictions import PredictionWriter
from .report import EvaluationReport
from .rundirs import RUN_DIR_ENV, job_checkpoint, job_name, job_run_dir, new_run_dir, run_dir_lock, run_dir_of
from .task import DataModule, Model
from .trainers import build_trainer, check_trainer_settings, single_device_trainer

log = logging.getLogger(__name__)


def fit(
    config: Config, resume: Path | None = None, into: Path | None = None, callbacks: Sequence[Callback] = ()
) -> Path | None:
    """Train, then report on the best checkpoint on val, and on test when a test split exists;
    returns the run directory in the launching process, and None in the DDP worker processes that
    Lightning starts, so that only one reports.

    A new fit gets a new run directory, or when SLURM or torchrun started its processes, the one
    named after the job (`job_name`) for this config (`job_run_dir`), which a restarted job
    continues (`job_checkpoint`). The fit holds its run directory's lock (`run_dir_lock`) until it ends.
    Resuming (`resume`: a checkpoint) continues in the run directory the checkpoint belongs to,
    with its logger run, and exactly where it stopped: the data order, the random state and every
    counter come back from the checkpoint. A `tune` trial gives its run directory (`into`) and
    the callback that prunes it (`callbacks`).
    """
    config = normalized(config, backbone_name(config.model))  # stored: predict and export normalise the same
    check_trainer_settings(config)
    inherited = os.environ.get(RUN_DIR_ENV)
    job = None if inherited or into else job_name()  # a tune trial has its own run directory under SLURM too
    seed_everything(config.seed, workers=True, verbose=False)
    datamodule = DataModule(config.data, seed=config.seed)
    for path, problem in datamodule.undecodable.items():
        log.warning("data.root: %s does not decode (%s); left out (data.bad_images: skip)", path, problem)
    model = Model(config, **datamodule.class_info)
    run_dir = Path(inherited) if inherited else run_dir_of(resume)
    if job is not None:
        run_dir = run_dir or job_run_dir(config.output_dir, job, config)
        resume = job_checkpoint(run_dir, resume)
    resume_step = None
    if resume is None:  # a new fit: its first weights, if any are asked for
        initialise(model.network, config.model.weights, config.model.pretrained, backbone_name(config.model))
    else:
        checkpoint = read_checkpoint(resume, "--resume")
        check_resumable(resume, checkpoint, model, datamodule, config)
        resume_step = logged_steps(checkpoint)
    check_backend(config)  # the logger's store or server, once the config is settled, before a run directory
    if run_dir is None:
        run_dir = into or new_run_dir(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Under SLURM or torchrun every process gets here; Lightning reads each one's rank from the
    # launcher's variables (RANK, SLURM_PROCID) when it is imported. DDP worker processes that
    # Lightning launched (`inherited`) write into the run of the process that holds its lock.
    writer = not inherited and getattr(rank_zero_only, "rank", 0) == 0
    with ExitStack() as held:
        if writer:
            held.enter_context(run_dir_lock(run_dir))
            write_atomic(run_dir / "config.yaml", config.to_yaml())
        trainer = _fit_in(run_dir, config, model, datamodule, resume, resume_step, inherited is not None, callbacks)
    return run_dir if trainer.is_global_zero else None


def _fit_in(
    run_dir: Path,
    config: Config,
    model: Model,
    datamodule: DataModule,
    resume: Path | None,
    resume_step: int | None,
    inherited: bool,
    callbacks: Sequence[Callback],
) -> Trainer:
    """Train in `run_dir`, then validate the best checkpoint and test it; the Trainer that did it."""
    logger = build_logger(config, run_dir, resume_step=resume_step)
    logger.log_hyperparams(
        {key: json.dumps(value) if isinstance(value, dict) else value for key, value in config.flat().items()}
    )
    metrics_file = MetricsFile(run_dir / "metrics.json")
    report = EvaluationReport(config.report, config.seed, run_dir / "report", logger, metrics_file)
    trainer = build_trainer(
        config,
        default_root_dir=run_dir,
        logger=logger,
        callbacks=[*build_callbacks(config, run_dir, metrics_file), report, *callbacks],
        use_distributed_sampler=False,  # EpochSampler shards the data itself, in a resumable order
    )
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        with _batches_fit(config):
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
        best = None if config.trainer.fast_dev_run else "best"  # fast_dev_run keeps no checkpoint
        _validate_unlogged(trainer, model, datamodule, best)
        if datamodule.has_test_split:
            trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
        logger.finalize("success")  # the report's pictures reach the logger's files
        _leave_process_group()
    finally:
        if not inherited:
            del os.environ[RUN_DIR_ENV]
    return trainer


def _validate_unlogged(trainer: Trainer, model: Model, datamodule: DataModule, checkpoint: str | None) -> None:
    """Validate `checkpoint` for the report and `metrics.json`, keeping its metrics out of the logger,
    which has them already from the epoch that checkpoint was written in."""
    loggers = trainer.loggers
    trainer.loggers = []
    try:
        trainer.validate(model, datamodule=datamodule, ckpt_path=checkpoint, verbose=False, weights_only=True)
    finally:
        trainer.loggers = loggers


def evaluate(
    stage: Literal["validate", "test"], config: Config, checkpoint: Path, output: Path | None = None
) -> tuple[dict[str, float], Path]:
    """Validation or test metrics of a checkpoint on the configured data, and the folder of their
    report: `<output>/report/<split>`, by default in the checkpoint's run directory."""
    model = load_model(checkpoint, config)
    datamodule = DataModule(config.data, seed=config.seed)
    check_classes(datamodule, model)
    if stage == "test" and not datamodule.has_test_split:
        raise ConfigError(f"data.root: {config.data.root} has no test/ split to test on")
    folder = output or run_dir_of(checkpoint) or checkpoint.resolve().parent
    report = EvaluationReport(config.report, config.seed, folder / "report")
    trainer = single_device_trainer(config, report)
    with _batches_fit(config):
        results = (
            trainer.validate(model, datamodule=datamodule, verbose=False)
            if stage == "validate"
            else trainer.test(model, datamodule=datamodule, verbose=False)
        )
    metrics = {name: float(value) for name, value in results[0].items()}
    return metrics, report.written["val" if stage == "validate" else "test"]


@dataclass(frozen=True)
class Predicted:
    """What `predict` did: where the task's writer wrote, and how fast."""

    destination: Path
    images: int
    seconds: float


def predict(config: Config, checkpoint: Path, input_dir: Path, output_dir: Path, visualize: bool = False) -> Predicted:
    """Predict every image below `input_dir` into what the task's writer writes under `output_dir`
    (with `visualize`, also each image with its prediction drawn on it, in `<output_dir>/annotated/`)."""
    files = list_images(input_dir)
    writer = PredictionWriter(input_dir, files, output_dir, visualize)
    model = load_model(checkpoint, config)
    trainer = single_device_trainer(config, writer)
    started = time.perf_counter()
    with _batches_fit(config):
        trainer.predict(model, dataloaders=predict_dataloader(files, config.data), return_predictions=False)
    return Predicted(writer.destination, len(files), time.perf_counter() - started)


@contextmanager
def _batches_fit(config: Config) -> Iterator[None]:
    """An allocation that fails (on the GPU, or in the CPU's memory) as `data.batch_size`'s
    problem, in one line, rather than the allocator's traceback."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:  # torch.OutOfMemoryError is a RuntimeError
        cpu = "DefaultCPUAllocator" in str(error) or "out of memory" in str(error)
        if not isinstance(error, MemoryError | torch.OutOfMemoryError) and not cpu:
            raise
        size = config.data.batch_size
        raise ConfigError(
            f"data.batch_size: a batch of {size} does not fit in memory ({first_line(error)}); try a smaller one"
        ) from error


def _leave_process_group() -> None:
    """The processes of a distributed fit wait for each other once all is written, then leave the
    process group: one that exits with the group still open can abort at interpreter shutdown
    ("terminate called without an active exception"), which fails the whole job."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
