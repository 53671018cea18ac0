"""Benchmark for a GPU: training images/s of each task's default model in bf16-mixed, with and without
`torch.compile`, through the project's Lightning step against a plain PyTorch loop, and the
default fit's time to its target metric.

For each task it renders the default project and, in one process, runs for compile off and on
- the project's training step through Lightning's Trainer as `fit` builds it (its module, data
  module, default callbacks and logger), precision `bf16-mixed`, one device;
- a plain loop over the same loader with the same network (channels-last weights, compiled in place
  when on), loss, optimizer and schedule, under `torch.autocast(bfloat16)`, batches copied from
  pinned memory without blocking;
each timed from one batch's start to the next after warm-up steps (the first compiled steps
included in the warm-up), printing images/s and the ratio. Then it runs `default_fit.py` for the
task (the default config picks bf16-mixed on such a GPU by itself) for the time to target.

`--cpu` runs the same code on the CPU, in float32 (a CPU without bfloat16 units emulates it) with
the sizes of the projects' own tests (so `torch.compile` finds their graphs in its cache) and few
steps, so that it keeps working where no GPU is at hand; its figures mean nothing. A benchmark, not a test: it exits 0.
`python benchmarks/gpu.py [--cpu] [task ...]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from projects import ROOT, TASKS, fill, output_or_error, render, run_code

MEASURE = """
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lightning import Callback
from torch.utils._pytree import tree_map

from vision_project.callbacks import MetricsFile, build_callbacks
from vision_project.config_sources import load_config
from vision_project.loggers import build_logger
from vision_project.models.optimization import Schedule, configure_optimization
from vision_project.report import EvaluationReport
from vision_project.task import DataModule, Model
from vision_project.trainers import build_trainer

DEVICE = "DEVICE_TYPE"
PRECISION = "PRECISION_NAME"
WARMUP, STEPS = WARMUP_STEPS, TIMED_STEPS
OVERRIDES = SIZE_OVERRIDES


def settings(compiled):
    accelerator = "gpu" if DEVICE == "cuda" else "cpu"
    chosen = [("trainer.accelerator", accelerator), ("trainer.devices", 1), ("trainer.precision", PRECISION)]
    return load_config(overrides=[*OVERRIDES, *chosen, ("model.compile", compiled)])


def loss_of(model, batch):
    LOSS


class StepTimes(Callback):
    def __init__(self):
        self.starts = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.starts.append(time.perf_counter())


def lightning_round(config, run_dir):
    datamodule = DataModule(config.data, seed=config.seed)
    model = Model(config, **datamodule.class_info)
    times = StepTimes()
    logger = build_logger(config, run_dir)
    metrics_file = MetricsFile(run_dir / "metrics.json")
    report = EvaluationReport(config.report, config.seed, run_dir / "report", logger, metrics_file)
    callbacks = [*build_callbacks(config, run_dir, metrics_file), report, times]
    trainer = build_trainer(
        config, default_root_dir=run_dir, logger=logger, callbacks=callbacks, max_epochs=1,
        limit_train_batches=WARMUP + STEPS + 1, limit_val_batches=1, num_sanity_val_steps=0,
        use_distributed_sampler=False, enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    return [later - earlier for earlier, later in zip(times.starts, times.starts[1:])][WARMUP:]


def plain_round(config):
    datamodule = DataModule(config.data, seed=config.seed)
    datamodule.setup("fit")
    model = Model(config, **datamodule.class_info).to(DEVICE)
    schedule = Schedule(WARMUP + STEPS + 1, warmup_steps=0, cosine=True)
    optimization = configure_optimization(*model.backbone_and_head(), config.optim, schedule)
    optimizer, scheduler = optimization["optimizer"], optimization["lr_scheduler"]["scheduler"]
    model.train()
    starts = []
    for index, batch in enumerate(datamodule.train_dataloader()):
        starts.append(time.perf_counter())
        if index == WARMUP + STEPS:
            break
        batch = tree_map(lambda item: item.to(DEVICE, non_blocking=True) if torch.is_tensor(item) else item, batch)
        with torch.autocast(device_type=DEVICE, dtype=torch.bfloat16, enabled=PRECISION == "bf16-mixed"):
            loss = loss_of(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss.item()  # what Lightning's logging reads back, so both loops end a step the same way
    return [later - earlier for earlier, later in zip(starts, starts[1:])][WARMUP:]


name = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU, {} threads".format(torch.get_num_threads())
print(f"device: {name}, torch {torch.__version__}, {PRECISION}, {STEPS} timed steps after {WARMUP}")
with tempfile.TemporaryDirectory() as folder:
    for compiled in (False, True):
        config = settings(compiled)
        lightning = statistics.median(lightning_round(config, Path(folder) / f"run-{compiled}"))
        plain = statistics.median(plain_round(config))
        batch = config.data.batch_size
        print(
            f"compile {'on ' if compiled else 'off'}: lightning {batch / lightning:8.1f} images/s, "
            f"plain {batch / plain:8.1f} images/s, ratio={lightning / plain:.3f} (step time lightning / plain)"
        )
if DEVICE == "cuda":
    print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
"""

CPU_SIZES = [
    ("data.image_size", 64),
    ("data.batch_size", 16),
    ("data.synthetic_train_size", 96),
    ("data.synthetic_val_size", 16),
    ("data.synthetic_test_size", 16),
    ("callbacks.progress_bar", False),
]
"""`--cpu`: just enough to run every line, in batches shaped as in the projects' tests."""
CPU_FIT = [f"--{key}={str(value).lower()}" for key, value in CPU_SIZES]
CPU_FIT += ["--trainer.max_epochs=1", "--trainer.log_every_n_steps=1"]


def bench(task: str, cpu: bool) -> None:
    project = render(task, "bench-gpu")
    code = fill(
        MEASURE,
        task,
        DEVICE_TYPE="cpu" if cpu else "cuda",
        PRECISION_NAME="32-true" if cpu else "bf16-mixed",
        WARMUP_STEPS="2" if cpu else "10",
        TIMED_STEPS="3" if cpu else "50",
        SIZE_OVERRIDES=repr(CPU_SIZES if cpu else []),
    )
    print(f"== {task}", flush=True)
    print(output_or_error(run_code(project, code)), flush=True)
    fit_args = CPU_FIT if cpu else []
    for compiled in ("false", "true"):
        print(f"-- default fit, model.compile {compiled}", flush=True)
        command = [sys.executable, str(ROOT / "benchmarks" / "default_fit.py"), task, "--", *fit_args]
        subprocess.run([*command, f"--model.compile={compiled}"], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU with small sizes, to check that it runs")
    parser.add_argument("tasks", nargs="*", metavar="task", help=f"any of {', '.join(TASKS)} (default: all)")
    arguments = parser.parse_args()
    if unknown := set(arguments.tasks) - set(TASKS):
        parser.error(f"unknown task {', '.join(sorted(unknown))}")
    for task in arguments.tasks or TASKS:
        bench(task, arguments.cpu)


if __name__ == "__main__":
    main()
