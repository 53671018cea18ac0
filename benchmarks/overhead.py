"""Benchmark: what Lightning and the project's own machinery cost per training step, against a plain
PyTorch loop.

For each task it renders the default project and, in one process, alternates rounds of
- the project's training step through Lightning's Trainer, built as `fit` builds it: its
  LightningModule and DataModule, the default callbacks (checkpoints, early stopping, learning-rate
  monitor, metrics file, exact-resume state, signal and NaN guards, the evaluation report) and the
  configured logger; and
- a plain loop over the same data loader with the same network, loss, optimizer, schedule,
  precision (fp32) and thread count,
each timed from one batch's start to the next (loading, forward, backward, step, logging and
callbacks included), after warm-up steps. It prints the median step times and, last,
`ratio=<lightning/plain>` per task. Goal: <= 1.03 on CPU. A benchmark, not a test: it exits 0.
`python benchmarks/overhead.py detection` runs one task.
"""

from __future__ import annotations

import os
import sys

from projects import TASKS, fill, output_or_error, render, run_code

MEASURE = """
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lightning import Callback

from vision_project.callbacks import MetricsFile, build_callbacks
from vision_project.config import Config
from vision_project.loggers import build_logger
from vision_project.models.optimization import Schedule, configure_optimization
from vision_project.report import EvaluationReport
from vision_project.task import DataModule, Model
from vision_project.trainers import build_trainer

WARMUP, STEPS, ROUNDS = 5, 25, 3

config = Config()  # the defaults: progress bar and logger on
datamodule = DataModule(config.data, seed=config.seed)
model = Model(config, **datamodule.class_info)


def loss_of(batch):
    LOSS


class StepTimes(Callback):
    def __init__(self):
        self.starts = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.starts.append(time.perf_counter())


def lightning_round(run_dir):
    times = StepTimes()
    logger = build_logger(config, run_dir)
    metrics_file = MetricsFile(run_dir / "metrics.json")
    report = EvaluationReport(config.report, config.seed, run_dir / "report", logger, metrics_file)
    callbacks = [*build_callbacks(config, run_dir, metrics_file), report, times]
    trainer = build_trainer(
        config, default_root_dir=run_dir, logger=logger, callbacks=callbacks, max_epochs=1,
        limit_train_batches=WARMUP + STEPS + 1, limit_val_batches=2, num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=datamodule)
    return [later - earlier for earlier, later in zip(times.starts, times.starts[1:])][WARMUP:]


def plain_round():
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    schedule = Schedule(WARMUP + STEPS + 1, warmup_steps=0, cosine=True)
    optimization = configure_optimization(*model.backbone_and_head(), config.optim, schedule)
    optimizer, scheduler = optimization["optimizer"], optimization["lr_scheduler"]["scheduler"]
    model.train()
    starts = []
    for index, batch in enumerate(loader):
        starts.append(time.perf_counter())
        if index == WARMUP + STEPS:
            break
        loss = loss_of(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss.item()  # what Lightning's logging reads back, so both loops end a step the same way
    del loader
    return [later - earlier for earlier, later in zip(starts, starts[1:])][WARMUP:]


lightning, plain = [], []
with tempfile.TemporaryDirectory() as folder:
    for round_index in range(ROUNDS):
        lightning += lightning_round(Path(folder) / f"run{round_index}")
        plain += plain_round()
print(f"threads: {torch.get_num_threads()}, steps timed: {len(lightning)} + {len(plain)}")
print(f"lightning step: {statistics.median(lightning) * 1000:8.1f} ms (median)")
print(f"plain step:     {statistics.median(plain) * 1000:8.1f} ms (median)")
print(f"ratio={statistics.median(lightning) / statistics.median(plain):.3f}")
"""


def bench(task: str) -> None:
    project = render(task, "bench-overhead")
    result = run_code(project, fill(MEASURE, task))
    print(f"== {task} ({os.cpu_count()} cpu cores, default config)")
    lines = output_or_error(result).splitlines()
    print("\n".join(lines[-4:] if result.returncode == 0 else lines))


def main() -> None:
    for task in sys.argv[1:] or TASKS:
        bench(task)


if __name__ == "__main__":
    main()
