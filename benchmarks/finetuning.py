"""Benchmark: fine-tuning on the built-in data, for each task.

1. The monitored validation metric after the same short budget (`EPOCHS` epochs on
   `TRAIN_IMAGES` images): from scratch; initialised from the backbone of a classification
   checkpoint (a classification project trained on its built-in shapes first: the transfer path
   users take); and from scratch with `model.ema`.
2. The time per training step of the torchvision default backbone and two timm backbones, read
   from the `train_images_per_sec` the fit logs (the second logging window, after warm-up).

A benchmark, not a test: it prints its figures and exits 0. `python benchmarks/finetuning.py
[starts|timing] [task ...]` runs one part, or some tasks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from projects import TASKS, output_or_error, project_env, render
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # type: ignore[import-untyped]

EPOCHS = 2
TRAIN_IMAGES = 1000
PRETRAIN_EPOCHS = 3
"""The classification fit whose checkpoint initialises the other tasks' backbones."""
BACKBONES = ("resnet18", "timm/convnext_nano", "timm/efficientnet_b0")
TIMED_BATCHES = 21
"""Training batches of a timing fit: `train_images_per_sec` is logged at steps 10 and 20."""
PARTS = ("starts", "timing")
QUIET = ["--callbacks.progress_bar", "false", "--report.samples", "0"]
SHORT = [
    f"--data.synthetic_train_size={TRAIN_IMAGES}",
    f"--trainer.max_epochs={EPOCHS}",
    "--callbacks.early_stopping=false",
]


def fit(project: Path, args: Sequence[str]) -> Path | None:
    """The run directory of `fit ARGS` in `project`, or None (its error printed)."""
    command = [sys.executable, "-m", "vision_project", "fit", *QUIET, *args]
    result = subprocess.run(command, cwd=project, env=project_env(project), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(output_or_error(result))
        return None
    return project / result.stdout.strip().splitlines()[-1].removeprefix("Run directory: ")


def monitored(run: Path) -> tuple[str, float]:
    """The monitored metric of the best checkpoint, validated after the fit."""
    metrics = json.loads((run / "metrics.json").read_text())
    ((name, _),) = metrics["best_score"].items()
    return name, float(metrics["val"][name])


def classification_checkpoint() -> Path | None:
    project = render("classification", "finetuning-source")
    run = fit(project, [f"--trainer.max_epochs={PRETRAIN_EPOCHS}", "--callbacks.early_stopping=false"])
    if run is None:
        return None
    name, value = monitored(run)
    print(f"classification source: {PRETRAIN_EPOCHS} epochs of the built-in data, {name} {value:.4f}")
    return Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"])


def compare_starts(task: str, source: Path | None) -> None:
    project = render(task, "finetuning")
    starts = {"from scratch": [], "model.ema true": ["--model.ema=true"]}
    if source is not None:
        starts["classification backbone"] = [f"--model.weights={source}"]
    print(f"== {task}: {EPOCHS} epochs of {TRAIN_IMAGES} images")
    for start, args in starts.items():
        run = fit(project, [*SHORT, *args])
        if run is not None:
            name, value = monitored(run)
            print(f"{start:<24} {name} {value:.4f}")


def time_backbones(task: str) -> None:
    project = render(task, "finetuning")
    print(f"== {task}: time per training step")
    for backbone in BACKBONES:
        timing = [
            f"--model.backbone={backbone}",
            f"--trainer.limit_train_batches={TIMED_BATCHES}",
            "--trainer.limit_val_batches=1",
            "--trainer.max_epochs=1",
            "--trainer.log_every_n_steps=10",
            "--data.synthetic_val_size=16",
            "--data.synthetic_test_size=16",
        ]
        run = fit(project, timing)
        if run is None:
            continue
        events = EventAccumulator(str(run / "tensorboard"))
        events.Reload()
        speed = events.Scalars("train_images_per_sec")[-1].value
        batch_size = int(yaml.safe_load((run / "config.yaml").read_text())["data"]["batch_size"])
        print(f"{backbone:<24} {1000 * batch_size / speed:7.1f} ms per step of {batch_size} images")


def main(args: Sequence[str]) -> None:
    parts = [part for part in PARTS if part in args] or list(PARTS)
    tasks = [task for task in args if task in TASKS] or list(TASKS)
    if "starts" in parts:
        source = classification_checkpoint()
        for task in tasks:
            compare_starts(task, source)
    if "timing" in parts:
        for task in tasks:
            time_backbones(task)


if __name__ == "__main__":
    main(sys.argv[1:])
