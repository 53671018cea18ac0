"""Benchmark: the peak memory of a short `fit` as the number of classes grows, per task.

Renders the default project of classification and segmentation, writes a data set on disk with
10, 200 and 1,000 classes (a few tiny images per class; segmentation stops at 200: its masks are
8-bit PNGs, 255 marking ignored pixels) and runs `fit` for one epoch in a fresh process with the
default `trainer.deterministic: true`, batch size 32, then prints that process's peak resident
memory (`ru_maxrss`), whether it exited 0, and the pixel size of the confusion matrix's picture.
A benchmark, not a test: it prints figures and exits 0. `python benchmarks/evaluation_memory.py
segmentation` runs one task; `... classification 10 200` chooses the class counts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from projects import project_env, render

CLASSES = {"classification": (10, 200, 1000), "segmentation": (10, 200)}
IMAGE_SIZE = 16
FIT = [
    "--trainer.max_epochs", "1",
    "--data.batch_size", "32",
    "--data.image_size", "32",
    "--data.num_workers", "0",
    "--data.augment", "false",
    "--report.samples", "4",
    "--callbacks.progress_bar", "false",
]  # fmt: skip
MEASURE = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=False)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{result.returncode} {peak:.0f}")
print(result.stderr.strip().splitlines()[-1] if result.returncode else "", file=sys.stderr)
"""
"""Runs the command given as its arguments; prints its exit status and peak RSS in MiB (Linux: KiB / 1024)."""


def image_folders(root: Path, classes: int) -> Path:
    """`<split>/<class>/*.png`: two training images of each class, one each to validate and test on."""
    for split, count in {"train": 2, "val": 1, "test": 1}.items():
        for label in range(classes):
            folder = root / split / f"class_{label:04d}"
            folder.mkdir(parents=True)
            for index in range(count):
                shade = (label * 37 % 256, label * 91 % 256, index * 120)
                Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), shade).save(folder / f"{index}.png")
    return root


def mask_folders(root: Path, classes: int) -> Path:
    """`<split>/images`, `<split>/masks` and `classes.txt`: each mask a stripe per class, every class in each split."""
    per_image = 8
    for split, count in {"train": 2, "val": 1, "test": 1}.items():
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for index in range(count * max(1, classes // per_image)):
            mask = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
            for stripe in range(per_image):
                label = (index * per_image + stripe) % classes
                mask.paste(label, (0, 2 * stripe, IMAGE_SIZE, 2 * stripe + 2))
            Image.merge("RGB", [mask] * 3).save(root / split / "images" / f"{index:04d}.png")
            mask.save(root / split / "masks" / f"{index:04d}.png")
    (root / "classes.txt").write_text("".join(f"class_{label:04d}\n" for label in range(classes)))
    return root


def bench(task: str, counts: list[int]) -> None:
    project = render(task, "bench-memory")
    print(f"== {task} ({os.cpu_count()} cpu cores, fit of 1 epoch, batch 32, trainer.deterministic true)")
    for classes in counts:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            root = (image_folders if task == "classification" else mask_folders)(work / "data", classes)
            fit = [sys.executable, "-m", "vision_project", "fit", "--data.root", str(root), *FIT]
            fit += ["--output_dir", str(work / "runs")]
            result = subprocess.run(
                [sys.executable, "-c", MEASURE, *fit],
                cwd=project,
                env=project_env(project),
                capture_output=True,
                text=True,
                check=False,
            )
            status, peak = result.stdout.split()
            pictures = sorted(work.glob("runs/*/report/val/confusion_matrix.png"))
            size = "none"
            if pictures:
                with Image.open(pictures[0]) as picture:
                    size = "x".join(map(str, picture.size))
            outcome = "ok" if status == "0" else f"exit {status}: {result.stderr.strip()[-300:]}"
            print(f"{classes:5d} classes: peak RSS {peak:>6} MiB, confusion_matrix.png {size}, {outcome}")


def main() -> None:
    tasks = [name for name in sys.argv[1:] if name in CLASSES] or list(CLASSES)
    numbers = [int(value) for value in sys.argv[1:] if value.isdigit()]
    for task in tasks:
        bench(task, numbers or list(CLASSES[task]))


if __name__ == "__main__":
    main()
