"""Benchmark: what the evaluation report costs a training epoch, per task.

Renders the default project of each task and fits it for one epoch on its default synthetic data,
with its default logger and the `EvaluationReport` callback as `fit` wires it, under Lightning's
`SimpleProfiler`. Prints the time of the training epoch, of the validation epoch, and of the
report's hooks during the fit (drawing the grid's samples as the validation loop passes them, and
the per-epoch picture sent to the logger), then the time of the report written after the fit.
A benchmark, not a test: it prints figures and exits 0. `python benchmarks/report_overhead.py detection`
runs one task.
"""

from __future__ import annotations

import os
import sys

from projects import TASKS, fill, output_or_error, render, run_code

MEASURE = """
import time
from pathlib import Path

from lightning import Trainer
from lightning.pytorch.profilers import SimpleProfiler

from vision_project.config import Config
from vision_project.loggers import build_logger
from vision_project.report import EvaluationReport
from vision_project.task import DataModule, Model

config = Config.from_data({"trainer": {"max_epochs": 1}})
datamodule = DataModule(config.data, seed=config.seed)
model = Model(config, **datamodule.class_info)
run_dir = Path("bench-run")
logger = build_logger(config, run_dir)
report = EvaluationReport(config.report, config.seed, run_dir / "report", logger)
profiler = SimpleProfiler()
trainer = Trainer(
    max_epochs=1, logger=logger, callbacks=[report], profiler=profiler, enable_checkpointing=False,
    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
)
trainer.fit(model, datamodule=datamodule)
durations = profiler.recorded_durations
hooks = sorted(key for key in durations if key.startswith("[Callback]EvaluationReport.on_validation"))
during = sum(sum(durations[key]) for key in hooks)
train = sum(durations["run_training_epoch"])
steps = sum(durations["[Strategy]SingleDeviceStrategy.validation_step"])
print(f"training epoch:   {train:7.2f} s")
print(f"validation steps: {steps:7.2f} s")
for key in hooks:
    print(f"{key.split('.')[-1]:<26} {sum(durations[key]) * 1000:7.1f} ms in {len(durations[key])} calls")
print(f"report during the fit: {during * 1000:.0f} ms, {100 * during / train:.2f} % of the training epoch")
started = time.perf_counter()
trainer.validate(model, datamodule=datamodule, verbose=False)
print(f"validate with the report after the fit: {time.perf_counter() - started:.2f} s")
"""


def bench(task: str) -> None:
    project = render(task, "bench-report")
    result = run_code(project, fill(MEASURE, task))
    print(f"== {task} ({os.cpu_count()} cpu cores, default config, 1 epoch)")
    print(output_or_error(result))


def main() -> None:
    for task in sys.argv[1:] or TASKS:
        bench(task)


if __name__ == "__main__":
    main()
