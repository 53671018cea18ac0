"""Benchmark: what the default sweep finds on the built-in data, and what the median pruner saves.

For each task, renders the default project and runs `tune` twice with the default search space
(`optim.lr` log-uniform, `optim.weight_decay`) and the same TPE seed: once with the median pruner
(the default), once without. Each trial is a short fit of a smaller built-in data set. Prints, per
task and pruner, the best validation metric, the trials complete / pruned, the epochs trained and the
wall time, read back from the studies' SQLite databases.

    python benchmarks/tune.py [classification detection segmentation] [--trials 8] [--epochs 3]

A benchmark, not a test: it reports and exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState
from projects import TASKS, output_or_error, project_env, render


def tune(project: Path, output_dir: Path, pruner: str, options: argparse.Namespace) -> tuple[float, str]:
    """Run one study to its end; its wall time, and the command's output or error."""
    command = [
        sys.executable, "-m", "vision_project", "tune",
        "--tune.study_name", pruner,
        "--tune.pruner", pruner,
        "--tune.n_trials", str(options.trials),
        "--tune.seed", "0",
        "--trainer.max_epochs", str(options.epochs),
        "--data.synthetic_train_size", str(options.train_size),
        "--data.synthetic_val_size", str(options.train_size // 4),
        "--data.synthetic_test_size", str(options.train_size // 4),
        "--callbacks.progress_bar", "false",
        "--output_dir", str(output_dir),
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=project_env(project), capture_output=True, text=True, check=False)
    return time.perf_counter() - started, output_or_error(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help=f"of {', '.join(TASKS)} (default: every one)")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=400, help="built-in training images")
    options = parser.parse_args()
    tasks = options.tasks or list(TASKS)
    if set(tasks) - set(TASKS):
        parser.error(f"tasks are {', '.join(TASKS)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{options.trials} trials of {options.epochs} epochs, {options.train_size} training images")
    print(f"{'task':<15}{'pruner':<8}{'best':>8}{'complete':>10}{'pruned':>8}{'failed':>8}{'epochs':>8}{'wall s':>8}")
    for task in tasks:
        project = render(task, "tune")
        output_dir = project / "runs"
        for pruner in ("median", "none"):
            seconds, output = tune(project, output_dir, pruner, options)
            storage = f"sqlite:///{output_dir / pruner / 'study.db'}"
            try:
                study = optuna.load_study(study_name=pruner, storage=storage)
            except KeyError:
                print(f"{task:<15}{pruner:<8} no study: {output}")
                continue
            states = [trial.state for trial in study.trials]
            counts = [states.count(state) for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
            epochs = sum(len(trial.intermediate_values) for trial in study.trials)
            best = f"{study.best_value:.4f}" if counts[0] else "-"
            print(
                f"{task:<15}{pruner:<8}{best:>8}{counts[0]:>10}{counts[1]:>8}{counts[2]:>8}{epochs:>8}{seconds:>8.0f}"
            )
            for line in output.splitlines():
                if line.startswith("trial "):
                    print(f"    {line}")


if __name__ == "__main__":
    main()
