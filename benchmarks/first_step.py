"""Benchmark: time to first step. Renders each task's default project and runs
`fit --trainer.fast_dev_run true` as the command line does, split into render, imports, setup (config,
data, model, logger, trainer), the first batch's loading, the first training step, and the rest
(validation, test and the report). Goal: <= 30 s per task, render included, install excluded.
A benchmark, not a test: it prints figures and exits 0. `python benchmarks/first_step.py detection`
runs one task.
"""

from __future__ import annotations

import os
import sys
import time

from projects import TASKS, output_or_error, render, run_code

GOAL_SECONDS = 30.0

MEASURE = """
import time
started = time.perf_counter()
from lightning import Callback
from vision_project import cli, runner
imported = time.perf_counter()
marks = {}

class Marks(Callback):
    def on_fit_start(self, trainer, pl_module):
        marks.setdefault("setup", time.perf_counter())
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        marks.setdefault("batch", time.perf_counter())
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        marks.setdefault("step", time.perf_counter())

build_trainer = runner.build_trainer
def with_marks(config, **overrides):
    overrides["callbacks"] = [*overrides.get("callbacks", []), Marks()]
    return build_trainer(config, **overrides)
runner.build_trainer = with_marks
status = cli.main(["fit", "--trainer.fast_dev_run", "true", "--callbacks.progress_bar", "false"])
finished = time.perf_counter()
assert status == 0
print(f"imports {imported - started:.2f}")
print(f"setup {marks['setup'] - imported:.2f}")
print(f"first batch {marks['batch'] - marks['setup']:.2f}")
print(f"first step {marks['step'] - marks['batch']:.2f}")
print(f"rest {finished - marks['step']:.2f}")
"""


def bench(task: str) -> None:
    started = time.perf_counter()
    project = render(task, "bench-first-step")
    rendering = time.perf_counter() - started
    started = time.perf_counter()
    result = run_code(project, MEASURE)
    process = time.perf_counter() - started
    if result.returncode != 0:
        print(f"== {task}\n{output_or_error(result)}")
        return
    parts = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in result.stdout.splitlines()[-5:]}
    total = rendering + process
    print(f"== {task} ({os.cpu_count()} cpu cores, `fit --trainer.fast_dev_run true`)")
    print(f"render (copier):  {rendering:6.2f} s")
    for name, seconds in parts.items():
        print(f"{name + ':':<17} {seconds:6.2f} s")
    print(f"interpreter start and exit: {process - sum(parts.values()):.2f} s")
    verdict = "met" if total <= GOAL_SECONDS else "NOT met"
    print(f"total: {total:.2f} s (goal <= {GOAL_SECONDS:.0f} s: {verdict})")


def main() -> None:
    for task in sys.argv[1:] or TASKS:
        bench(task)


if __name__ == "__main__":
    main()
