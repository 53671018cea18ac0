"""Where a fit writes: run directories in `output_dir`, the one a SLURM or torchrun job names, and
the checkpoint a resumed or restarted fit continues from."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from lightning.fabric.plugins.environments.slurm import SLURMEnvironment
from lightning.fabric.plugins.environments.torchelastic import TorchElasticEnvironment

from . import PROGRAM
from .callbacks import LAST_CHECKPOINT
from .errors import ConfigError

RUN_DIR_ENV = f"{PROGRAM.upper()}_RUN_DIR"
"""Set while `fit` runs, so that the DDP worker processes it launches join its run directory."""
HPC_CHECKPOINTS = "hpc_ckpt_*.ckpt"
"""What Lightning saves in the run directory when SLURM sends the requeue signal (SIGUSR1)."""


RUN_NAME = re.compile(r"^(\d{8}-\d{6})(?:-(\d+))?$")
"""A run directory's name, `<date>-<time>[-n]`: its order is the order the runs were started in."""


def last_checkpoint(output_dir: Path) -> Path:
    """`last.ckpt` of the newest run in `output_dir`: what `fit --resume last` continues."""
    runs = sorted(
        (match.group(1), int(match.group(2) or 0), folder)
        for folder in (output_dir.iterdir() if output_dir.is_dir() else [])
        if (match := RUN_NAME.match(folder.name)) and (folder / "config.yaml").is_file()
    )
    if not runs:
        raise ConfigError(f"--resume last: no run in output_dir {output_dir} to resume")
    newest = runs[-1][2]
    checkpoint = newest / "checkpoints" / LAST_CHECKPOINT
    if not checkpoint.is_file():
        raise ConfigError(
            f"--resume last: the newest run {newest} stopped before writing checkpoints/{LAST_CHECKPOINT}; "
            "start a new fit or resume an older run by path"
        )
    return checkpoint


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
