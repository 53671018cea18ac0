"""The report's files: `per_class.csv`, the confusion matrix and the precision-recall curves (CSV
and a matplotlib figure each), and `predictions.png`, the grid of drawn samples."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.transforms.v2.functional import pil_to_tensor

from .drawing import Colour, class_colours, label_font
from .files import png_bytes, write_atomic
from .task_evaluation import Curve, EvaluationResult, Tile

REPORT_FILES = (
    "per_class.csv",
    "tta.txt",
    "confusion_matrix.csv",
    "confusion_matrix.png",
    "pr_curve.csv",
    "pr_curve.png",
    "predictions.png",
)
DPI = 100
TILE_HEIGHT = 128
"""Tiles smaller than this (in pixels) are enlarged in the prediction grid, to be seen at all."""
FONT_SIZE, LINE, MARGIN = 13, 16, 8
CAPTION_LINES = 2
"""Lines of text above each tile of the grid (a tile's caption has at most two)."""
MATRIX_CLASSES = 30
"""The most classes the confusion matrix's picture shows, those most often confused: beyond that a
cell is too small to see (and the picture too large to render); the CSV holds every class."""
CURVES = 10
"""The most precision-recall curves drawn, those of the lowest average precision; the CSV holds every class's."""
LEGEND_LINES = 3
"""The most lines of the grid's legend; the classes left out are counted at its end."""
NAME_LENGTH = 32
"""Class names longer than this are cut short on the pictures (not in the CSV files)."""


def write_report(
    folder: Path,
    result: EvaluationResult,
    tiles: Sequence[Tile],
    legend: Sequence[tuple[str, Colour]] = (),
    tta: str = "none",
) -> dict[str, Tensor]:
    """Write the report files into `folder` (replacing an earlier report there), `tta.txt` saying
    which test-time augmentation made the predictions (`tta.describe`); returns the pictures by
    name (uint8 (3, H, W)), for the logger."""
    table = [[name, *values] for name, values in result.rows.items()]
    files: dict[str, str | bytes] = {"per_class.csv": csv_text(["class", *result.columns], table)}
    files["tta.txt"] = f"test-time augmentation: {tta}\n"
    labels = result.confusion_labels
    matrix = [[label, *row] for label, row in zip(labels, result.confusion.tolist(), strict=True)]
    files["confusion_matrix.csv"] = csv_text(["true \\ predicted", *labels], matrix)
    figures = {"confusion_matrix": confusion_matrix_figure(result.confusion, labels, result.confusion_title)}
    if result.curves:
        points = [
            [curve.name, threshold, precision, recall]
            for curve in result.curves
            for threshold, precision, recall in zip(curve.thresholds, curve.precision, curve.recall, strict=True)
        ]
        files["pr_curve.csv"] = csv_text(["class", "threshold", "precision", "recall"], points)
        figures["pr_curve"] = pr_curve_figure(result.curves, result.curve_title)
    pictures = {}
    for name, figure in figures.items():
        files[f"{name}.png"], pictures[name] = render_figure(figure)
    if tiles:
        pictures["predictions"] = predictions_grid(tiles, legend)
        files["predictions.png"] = png_bytes(pictures["predictions"])
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        write_atomic(folder / name, content)
    for name in set(REPORT_FILES) - set(files):
        (folder / name).unlink(missing_ok=True)  # from an earlier report with other settings
    return pictures


def confusion_matrix_figure(counts: Tensor, labels: Sequence[str], title: str) -> Figure:
    """Counts on the left, each row divided by its total (what share of each true class went where)
    on the right; of at most `MATRIX_CLASSES` classes, those most often confused (with each other
    or with any class), so that the picture stays readable and bounded whatever the classes."""
    counts = counts.cpu().to(torch.float64)
    totals = counts.sum(dim=1, keepdim=True)
    shares = torch.where(totals > 0, counts / totals.clamp(min=1), torch.zeros_like(counts))
    if len(labels) > MATRIX_CLASSES:
        shown = most_confused(counts, MATRIX_CLASSES)
        counts, shares = counts[shown][:, shown], shares[shown][:, shown]
        title += f"\nthe {MATRIX_CLASSES} of {len(labels)} classes most often confused (all: confusion_matrix.csv)"
        labels = [labels[index] for index in shown.tolist()]
    size = max(4.0, 0.45 * len(labels) + 2.0)
    figure = Figure(figsize=(2 * size + 1, size + 0.6), dpi=DPI, layout="constrained")
    figure.suptitle(title)
    for axes, values, subtitle, text in zip(
        figure.subplots(1, 2),
        (counts, shares),
        ("counts", "share of each true class (row)"),
        (_count, "{:.2f}".format),
        strict=True,
    ):
        _matrix(axes, values, [shorten(label) for label in labels], subtitle, text)
    return figure


def most_confused(counts: Tensor, limit: int) -> Tensor:
    """The indices, in order, of the `limit` classes with the most samples off the diagonal in their
    row or column (taken for another class, or another class taken for them); ties by index."""
    mistakes = counts.sum(dim=0) + counts.sum(dim=1) - 2 * counts.diagonal()
    order = torch.sort(mistakes, descending=True, stable=True).indices
    return order[:limit].sort().values


def shorten(name: str) -> str:
    """`name`, cut to `NAME_LENGTH` characters with an ellipsis: a label on a picture."""
    return name if len(name) <= NAME_LENGTH else name[: NAME_LENGTH - 1] + "\u2026"


def _matrix(axes: Axes, values: Tensor, labels: Sequence[str], title: str, text: Callable[[float], str]) -> None:
    image = axes.imshow(values.numpy(), cmap="Blues", vmin=0)
    axes.set_title(title)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels)
    if len(labels) <= 20:  # beyond that, numbers in the cells are unreadable: the colours say it
        bright = float(values.max()) / 2
        for (row, column), value in np.ndenumerate(values.numpy()):
            colour = "white" if value > bright else "black"
            axes.text(column, row, text(value), ha="center", va="center", color=colour, fontsize=8)
    axes.figure.colorbar(image, ax=axes, shrink=0.8)


def _count(value: float) -> str:
    """A count that fits in a cell: 850364 -> 850k."""
    if value < 10_000:
        return f"{value:.0f}"
    return f"{value / 1000:.0f}k" if value < 1_000_000 else f"{value / 1_000_000:.1f}M"


def pr_curve_figure(curves: Sequence[Curve], title: str) -> Figure:
    """One precision-recall curve per class, its average precision in the legend; of at most
    `CURVES` classes, those of the lowest average precision, the ones to look into."""
    if len(curves) > CURVES:
        title += f"\nthe {CURVES} of {len(curves)} classes of the lowest AP (all: pr_curve.csv)"
        lowest = sorted(range(len(curves)), key=lambda index: curves[index].average_precision)[:CURVES]
        curves = [curves[index] for index in sorted(lowest)]
    figure = Figure(figsize=(7, 6), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    colours = class_colours(len(curves))
    for curve, colour in zip(curves, colours, strict=True):
        label = f"{shorten(curve.name)} (AP {curve.average_precision:.3f})"
        axes.plot(curve.recall, curve.precision, color=_fraction(colour), label=label)
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    return figure


def predictions_grid(tiles: Sequence[Tile], legend: Sequence[tuple[str, Colour]] = ()) -> Tensor:
    """The tiles in a near-square grid, each under its caption (red for a mistake), enlarged to at
    least `TILE_HEIGHT` pixels without smoothing, and the colour of each class drawn on them along
    the bottom (at most `LEGEND_LINES` lines); uint8 (3, H, W). Drawn with PIL rather than
    matplotlib: fit sends it to the logger every epoch."""
    height, width = tiles[0].image.shape[-2:]
    scale = max(1, math.ceil(TILE_HEIGHT / height))
    height, width = height * scale, width * scale
    columns = max(1, min(len(tiles), math.ceil(math.sqrt(len(tiles) * height / width))))
    rows = math.ceil(len(tiles) / columns)
    font = ImageFont.truetype(label_font(), FONT_SIZE)
    caption_height = CAPTION_LINES * LINE + MARGIN
    cell_width, cell_height = width + MARGIN, height + caption_height + MARGIN
    grid_width, grid_height = columns * cell_width + MARGIN, rows * cell_height + MARGIN
    drawn = set().union(*(tile.classes for tile in tiles))
    legend = [(name, colour) for name, colour in legend if name in drawn]
    keys: list[tuple[str, Colour | None, int, int]] = []  # the legend's entries: text, colour, where
    left, line = MARGIN, 0  # in as many lines as the grid's width needs, up to LEGEND_LINES
    for count, (name, colour) in enumerate(legend):
        span = FONT_SIZE + 4 + round(font.getlength(shorten(name))) + 3 * MARGIN
        if left > MARGIN and left + span > grid_width:
            left, line = MARGIN, line + 1
        if line == LEGEND_LINES:  # no room left: the last entry gives way to a count of those left out
            _, _, left, top = keys.pop()
            keys.append((f"and {len(legend) - count + 1} more", None, left, top))
            line -= 1
            break
        keys.append((shorten(name), colour, left, grid_height + MARGIN + line * LINE))
        left += span
    legend_height = (line + 1) * LINE + 2 * MARGIN if legend else 0
    canvas = Image.new("RGB", (grid_width, grid_height + legend_height), "white")
    draw = ImageDraw.Draw(canvas)
    for index, tile in enumerate(tiles):
        left, top = MARGIN + (index % columns) * cell_width, MARGIN + (index // columns) * cell_height
        ink = "red" if tile.mistake else "black"
        draw.multiline_text((left, top), tile.caption, fill=ink, font=font, spacing=LINE - FONT_SIZE)
        picture = Image.fromarray(tile.image.permute(1, 2, 0).numpy()).resize((width, height), Image.Resampling.NEAREST)
        canvas.paste(picture, (left, top + caption_height))
    for text, swatch, left, top in keys:
        if swatch is not None:
            draw.rectangle((left, top + 2, left + FONT_SIZE, top + 2 + FONT_SIZE), fill=swatch)
        draw.text((left + (0 if swatch is None else FONT_SIZE + 4), top), text, fill="black", font=font)
    grid: Tensor = pil_to_tensor(canvas)
    return grid


def _fraction(colour: Colour) -> tuple[float, float, float]:
    """A colour as matplotlib takes it: each channel in [0, 1]."""
    red, green, blue = colour
    return red / 255, green / 255, blue / 255


def render_figure(figure: Figure) -> tuple[bytes, Tensor]:
    """The figure as a PNG file's bytes and as uint8 (3, H, W) pixels: rendered once for the file
    and the logger alike."""
    encoded = io.BytesIO()
    figure.savefig(encoded, format="png")
    with Image.open(encoded) as image:
        pixels: Tensor = pil_to_tensor(image.convert("RGB"))
    return encoded.getvalue(), pixels


def csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A CSV file's text; numbers rounded as `_cell` says."""
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_cell(value) for value in row] for row in rows])
    return table.getvalue()


def _cell(value: Any) -> Any:
    """Numbers rounded to 6 places, counts as integers, no value as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 6)
    return value
