"""Benchmark: does a task's recipe learn *which* class, on small, imbalanced real data?

Writes a data set on disk (seeded, in the rendered projects' real formats) where ten object
classes differ only in shape: each object has a random colour on a noisy background, 20 to 28 px
on a 96 px canvas, one to three per image, and the classes are imbalanced (the most common about
5x as frequent as the rarest); 900 train, 200 val, 200 test images. Background-dominated masks
like these are where a plain cross-entropy learns *where* objects are but not *which*.

Then it renders the task's default project (or takes `--project`), fits it on that data with the
given `fit` arguments and prints, from the run's `metrics.json`, the mean and per-class IoU
(segmentation) or mAP50 and per-class AP50 (detection) on val and test, with the wall time.

    python benchmarks/shape_classes.py segmentation [--epochs 5] [-- --model.dice_weight 0 ...]
    python benchmarks/shape_classes.py detection

A benchmark, not a test: it reports and exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter
from projects import ROOT, output_or_error, project_env, render

CANVAS = 96
SPLITS = {"train": 900, "val": 200, "test": 200}
CLASSES = ("circle", "square", "triangle", "pentagon", "hexagon", "star", "cross", "ring", "tee", "ell")
IMBALANCE = 5.0
"""How much more often the most common class occurs than the rarest; frequencies fall geometrically."""
OVERALL = "(all classes)"
"""The per-class table's row of the means (`task_evaluation.OVERALL`)."""
SIZES = (20, 28)
"""An object's extent in pixels, drawn uniformly."""
FORMAT_VERSION = 1
"""Bump when the drawing changes, so that a data set written by an older version is rewritten."""


@dataclass(frozen=True)
class Shape:
    label: int
    """Index into `CLASSES`."""
    box: tuple[int, int, int, int]
    """x1, y1, x2, y2 in pixels (exclusive end), the tight box of the drawn mask."""


def class_weights() -> list[float]:
    """Sampling weights per class: the first `IMBALANCE` times the last, geometric in between."""
    return [IMBALANCE ** (-index / (len(CLASSES) - 1)) for index in range(len(CLASSES))]


def _polygon(centre: tuple[float, float], radius: float, corners: int, turn: float) -> list[tuple[float, float]]:
    x, y = centre
    return [
        (
            x + radius * math.cos(turn + 2 * math.pi * k / corners),
            y + radius * math.sin(turn + 2 * math.pi * k / corners),
        )
        for k in range(corners)
    ]


def _outline(label: int, x: float, y: float, size: float, turn: float) -> list[list[tuple[float, float]]]:
    """The polygons (or, for round shapes, the bounding boxes as two corners) of one shape."""
    r = size / 2
    name = CLASSES[label]
    if name == "triangle":
        return [_polygon((x, y + r * 0.15), r, 3, -math.pi / 2 + turn)]
    if name == "square":
        return [_polygon((x, y), r * 1.3, 4, math.pi / 4 + turn)]
    if name == "pentagon":
        return [_polygon((x, y), r, 5, -math.pi / 2 + turn)]
    if name == "hexagon":
        return [_polygon((x, y), r, 6, turn)]
    if name == "star":
        outer, inner = (
            _polygon((x, y), r, 5, -math.pi / 2 + turn),
            _polygon((x, y), r * 0.45, 5, -math.pi / 2.0 + turn + math.pi / 5),
        )
        return [[point for pair in zip(outer, inner, strict=True) for point in pair]]
    t = size * 0.17  # half the width of a bar
    bars = {
        "cross": [(-r, -t, r, t), (-t, -r, t, r)],
        "tee": [(-r, -r, r, -r + 2 * t), (-t, -r, t, r)],
        "ell": [(-r, -r, -r + 2 * t, r), (-r, r - 2 * t, r, r)],
    }[name]
    return [_rotated_box(box, x, y, turn) for box in bars]


def _rotated_box(box: tuple[float, float, float, float], x: float, y: float, turn: float) -> list[tuple[float, float]]:
    x1, y1, x2, y2 = box
    cos, sin = math.cos(turn), math.sin(turn)
    return [(x + px * cos - py * sin, y + px * sin + py * cos) for px, py in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))]


def _draw_shape(draw: ImageDraw.ImageDraw, label: int, x: float, y: float, size: float, turn: float, fill: int) -> None:
    r = size / 2
    if CLASSES[label] == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif CLASSES[label] == "ring":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        draw.ellipse((x - r * 0.5, y - r * 0.5, x + r * 0.5, y + r * 0.5), fill=0)
    else:
        for polygon in _outline(label, x, y, size, turn):
            draw.polygon(polygon, fill=fill)


def _colour(rng: random.Random, away_from: tuple[int, int, int]) -> tuple[int, int, int]:
    """A random colour at least a fixed distance from the background's, so every object is visible."""
    while True:
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if sum(abs(a - b) for a, b in zip(colour, away_from, strict=True)) >= 150:
            return colour


def draw_scene(rng: random.Random) -> tuple[Image.Image, Image.Image, list[Shape]]:
    """A noisy background with one to three non-overlapping shapes; the RGB image, its mask of class
    indices (0 = background, `label + 1` = the shape's class) and the shapes."""
    background = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    noise = Image.effect_noise((CANVAS, CANVAS), rng.uniform(20, 45)).convert("RGB")
    image = Image.blend(Image.new("RGB", (CANVAS, CANVAS), background), noise, 0.35)
    mask = Image.new("L", (CANVAS, CANVAS), 0)
    shapes: list[Shape] = []
    for _ in range(rng.choice((1, 2, 2, 3))):
        for _attempt in range(20):
            size = rng.uniform(*SIZES)
            x, y = rng.uniform(size / 2 + 1, CANVAS - size / 2 - 1), rng.uniform(size / 2 + 1, CANVAS - size / 2 - 1)
            label = rng.choices(range(len(CLASSES)), weights=class_weights())[0]
            one = Image.new("L", (CANVAS, CANVAS), 0)
            _draw_shape(ImageDraw.Draw(one), label, x, y, size, rng.uniform(-0.3, 0.3), 255)
            if any(mask.getpixel(point) for point in _covered(one)):
                continue  # overlaps a shape drawn before: place it again
            box = one.getbbox()
            if box is None:
                continue
            image.paste(Image.new("RGB", (CANVAS, CANVAS), _colour(rng, background)), mask=one)
            mask.paste(label + 1, mask=one)
            shapes.append(Shape(label, box))
            break
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.6)))
    return image, mask, shapes


def _covered(mask: Image.Image) -> list[tuple[int, int]]:
    box = mask.getbbox()
    if box is None:
        return []
    x1, y1, x2, y2 = box
    return [(x, y) for y in range(y1, y2) for x in range(x1, x2) if mask.getpixel((x, y))]


def write_dataset(root: Path, seed: int = 0) -> Path:
    """The data set below `root`: `segmentation/` (image + mask folders, `classes.txt`) and
    `detection/` (COCO JSON per split), the same scenes in both; kept if already written."""
    marker = root / "written.json"
    stamp = {"version": FORMAT_VERSION, "seed": seed, "splits": SPLITS}
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return root
    rng = random.Random(seed)
    segmentation, detection = root / "segmentation", root / "detection"
    for folder in (segmentation, detection):
        folder.mkdir(parents=True, exist_ok=True)
    (segmentation / "classes.txt").write_text("\n".join(["background", *CLASSES]) + "\n")
    for split, count in SPLITS.items():
        images, masks, boxes = segmentation / split / "images", segmentation / split / "masks", detection / split
        for folder in (images, masks, boxes):
            folder.mkdir(parents=True, exist_ok=True)
        coco: dict[str, list[dict[str, object]]] = {
            "images": [],
            "annotations": [],
            "categories": [{"id": index + 1, "name": name} for index, name in enumerate(CLASSES)],
        }
        for index in range(count):
            image, mask, shapes = draw_scene(rng)
            stem = f"{split}_{index:04d}"
            image.save(images / f"{stem}.png")
            mask.save(masks / f"{stem}.png")
            image.save(boxes / f"{stem}.png")
            coco["images"].append({"id": index, "file_name": f"{stem}.png", "width": CANVAS, "height": CANVAS})
            for shape in shapes:
                x1, y1, x2, y2 = shape.box
                coco["annotations"].append(
                    {
                        "id": len(coco["annotations"]) + 1,
                        "image_id": index,
                        "category_id": shape.label + 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1),
                        "iscrowd": 0,
                    }
                )
        (boxes / "annotations.json").write_text(json.dumps(coco))
    marker.write_text(json.dumps(stamp))
    return root


def class_counts(root: Path) -> dict[str, int]:
    """Objects per class in the training split, from the COCO file."""
    coco = json.loads((root / "detection" / "train" / "annotations.json").read_text())
    counts = dict.fromkeys(CLASSES, 0)
    for annotation in coco["annotations"]:
        counts[CLASSES[annotation["category_id"] - 1]] += 1
    return counts


def fit(task: str, project: Path, data: Path, epochs: int, fit_args: Sequence[str]) -> None:
    """Fit the project on the data set and print its per-class figures from `metrics.json`."""
    command = [
        sys.executable, "-m", "vision_project", "fit",
        "--data.root", str(data / task),
        "--data.image_size", str(CANVAS),
        "--trainer.max_epochs", str(epochs),
        "--callbacks.progress_bar", "false",
        *fit_args,
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=project_env(project), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    given = " ".join(fit_args) or "(defaults)"
    print(f"== {task}, trainer.max_epochs {epochs}, fit {given} ({os.cpu_count()} cpu cores)")
    if result.returncode != 0:
        print(output_or_error(result))
        return
    run_dir = project / result.stdout.strip().splitlines()[-1].removeprefix("Run directory: ")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"run: {run_dir}\nwall time (fit, val, test, report): {seconds:.0f} s")
    column = "iou" if task == "segmentation" else "ap_50"
    names = ["background", *CLASSES] if task == "segmentation" else list(CLASSES)
    print(f"{'split':<6}{'mean':>8}  " + " ".join(f"{name[:8]:>8}" for name in names))
    for split in ("val", "test"):
        table = metrics.get(f"{split}_per_class", {})
        row = [table.get(name, {}).get(column) for name in [OVERALL, *names]]
        print(f"{split:<6}" + " ".join(f"{value:>8.3f}" if value is not None else f"{'-':>8}" for value in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("segmentation", "detection"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data", type=Path, default=ROOT / "build" / "shape_classes" / "data")
    parser.add_argument("--project", type=Path, help="a rendered project to use instead of rendering the default one")
    arguments = sys.argv[1:]
    fit_args = arguments[arguments.index("--") + 1 :] if "--" in arguments else []
    options = parser.parse_args(arguments[: arguments.index("--")] if "--" in arguments else arguments)
    data = write_dataset(options.data)
    print("training objects per class:", class_counts(data))
    project = options.project.resolve() if options.project else render(options.task, "shape_classes")
    fit(options.task, project, data, options.epochs, fit_args)


if __name__ == "__main__":
    main()
