"""Benchmark: render the default project of each task and time `fit` on the built-in data for 5
epochs (classification's default; the dense tasks' defaults, 15 and 20 epochs, are their recipe
for small real data sets, and the built-in scenes reach their goal well within 5).

Prints, per task, the monitored validation metric after every epoch with the seconds since
training started (read back from the run's TensorBoard events), the wall time of the whole
command, and whether the goal was met. A benchmark, not a test: it reports and exits 0 either
way, so slow machines don't fail CI. `python benchmarks/default_fit.py detection` runs one task;
arguments after `--` go to `fit` (`-- --model.compile true`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from projects import output_or_error, project_env, render
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # type: ignore[import-untyped]

GOALS = {  # task: (monitored metric, target, seconds)
    "classification": ("val_acc", 0.95, 300),
    "detection": ("val_map_50", 0.5, 600),
    "segmentation": ("val_miou", 0.7, 600),
}


def bench(task: str, fit_args: Sequence[str] = ()) -> None:
    metric, target, budget = GOALS[task]
    project = render(task, "bench")
    command = [sys.executable, "-m", "vision_project", "fit", "--callbacks.progress_bar", "false"]
    command += ["--trainer.max_epochs", "5", *fit_args]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=project_env(project), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    print(f"== {task} ({os.cpu_count()} cpu cores)")
    if result.returncode != 0:
        print(output_or_error(result))
        return
    run_dir = project / result.stdout.strip().splitlines()[-1].removeprefix("Run directory: ")
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    first_step = events.Scalars("train_loss_step")[0].wall_time
    curve = [(scalar.value, scalar.wall_time - first_step) for scalar in events.Scalars(metric)]
    reached = next((elapsed for value, elapsed in curve if value >= target), None)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for epoch, (value, elapsed) in enumerate(curve):
        print(f"epoch {epoch}: {metric} {value:.4f} at {elapsed:6.1f} s of training")
    print(f"wall time (fit):  {seconds:.1f} s")
    print(f"{metric} >= {target}: " + (f"after {reached:.1f} s of training" if reached else "not reached"))
    print(f"final {metric}: {metrics['val'][metric]:.4f}; test: {json.dumps(metrics['test'])}")
    verdict = "met" if reached is not None and seconds <= budget else "NOT met"
    print(f"goal ({metric} >= {target} within {budget} s wall time): {verdict}")


def main() -> None:
    arguments = sys.argv[1:]
    tasks, fit_args = (
        (arguments[: arguments.index("--")], arguments[arguments.index("--") + 1 :])
        if "--" in arguments
        else (arguments, [])
    )
    for task in tasks or list(GOALS):
        bench(task, fit_args)


if __name__ == "__main__":
    main()
