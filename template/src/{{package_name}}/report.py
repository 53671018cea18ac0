"""The evaluation report: what a model gets right and wrong, per class and in pictures.

After `fit` (the best checkpoint, on val and on test), `validate` and `test`, `report/<split>/`
holds `per_class.csv`, `confusion_matrix.csv` + `.png`, the precision-recall curves where the task
has them (`pr_curve.csv` + `.png`) and `predictions.png`, a grid of sample images with what the
model predicted drawn on them. The per-class numbers also go to `metrics.json` and the pictures to
the logger. While `fit` runs, the grid goes to the logger every `report.log_every_n_epochs`
validation epochs, drawn from predictions the validation step made anyway.

What differs per task (the metrics, how a prediction is drawn) is the task's `Evaluation`, a
`TaskEvaluation`; the figures, files and the callback here are the same for every task.
"""

from __future__ import annotations

import abc
import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from matplotlib import colormaps, font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision.transforms.v2.functional import pil_to_tensor

from .callbacks import MetricsFile
from .config import ReportConfig
from .data.splits import EpochSampler
from .files import png_bytes, write_atomic
from .loggers import ExperimentLogger, log_image

Split = Literal["val", "test"]
Colour = tuple[int, int, int]
OVERALL = "(all classes)"
"""The name of the last row of `per_class.csv`: the task's metrics over all classes."""
REPORT_FILES = (
    "per_class.csv",
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


@dataclass(frozen=True)
class Tile:
    """One sample of the prediction grid: its picture with the prediction (and the truth) drawn on."""

    image: Tensor
    """uint8, shape (3, H, W)."""
    caption: str
    """At most two lines."""
    mistake: bool
    """The caption is drawn in red: the prediction is wrong."""


@dataclass(frozen=True)
class Curve:
    """The precision-recall curve of one class: precision and recall at each score threshold."""

    name: str
    recall: list[float]
    precision: list[float]
    thresholds: list[float]
    average_precision: float


@dataclass
class EvaluationResult:
    """What a task's evaluation found on one split."""

    columns: list[str]
    """The metrics of `per_class.csv`, after its `class` column."""
    rows: dict[str, list[float | int | None]]
    """Each class's values, then `OVERALL`; None where a class has no value (it never occurs)."""
    confusion: Tensor
    """Counts, shape (true, predicted), in the order of `confusion_labels`."""
    confusion_labels: list[str]
    confusion_title: str
    curves: list[Curve] = field(default_factory=list)
    curve_title: str = ""

    def per_class(self) -> dict[str, dict[str, float | int | None]]:
        """The table as plain data, as `metrics.json` keeps it."""
        return {name: dict(zip(self.columns, values, strict=True)) for name, values in self.rows.items()}


class TaskEvaluation(nn.Module, abc.ABC):
    """A task's evaluation: torchmetrics accumulators fed from each evaluation step's outputs, and
    the drawing of one sample's prediction. A module, so that its metrics follow the model's device."""

    @abc.abstractmethod
    def update(self, outputs: Any, batch: Any) -> None:
        """Add one batch: what the model's validation or test step returned, and the batch."""

    @abc.abstractmethod
    def compute(self) -> EvaluationResult:
        """The result over every batch added since `reset` (gathered from every process under DDP)."""

    @abc.abstractmethod
    def reset(self) -> None: ...

    @abc.abstractmethod
    def draw(self, outputs: Any, batch: Any, position: int) -> Tile:
        """The sample at `position` of the batch, with its prediction and ground truth drawn."""

    def legend(self) -> list[tuple[str, Colour]]:
        """The class of each colour on the tiles, if colours stand for classes."""
        return []


class EvaluationReport(Callback):
    """Writes `<folder>/<split>/` after each `validate` and `test` (the runner validates the best
    checkpoint after `fit`), and sends the prediction grid to `logger` while fitting.

    The grid's samples are `report.samples` images of the split chosen by `seed`, the same in every
    run; each is drawn when the evaluation loop passes it, so nothing is predicted twice.
    """

    def __init__(
        self,
        evaluation: TaskEvaluation,
        config: ReportConfig,
        seed: int,
        folder: Path,
        logger: ExperimentLogger | None = None,
        metrics_file: MetricsFile | None = None,
    ) -> None:
        self.evaluation = evaluation
        self.config = config
        self.seed = seed
        self.folder = folder
        self.logger = logger
        self.metrics_file = metrics_file
        self.written: dict[Split, Path] = {}
        """The report folder of each split written so far."""
        self._full = False
        self._drawing = False
        """Whether this loop draws the grid; the same on every process, as drawing ends in a gather."""
        self._samples: dict[int, list[tuple[int, int]]] = {}
        """Batch index -> (position in the batch, slot in the grid) of the samples in that batch."""
        self._tiles: dict[int, Tile] = {}

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING
        every = self.config.log_every_n_epochs
        logs_grid = (
            fitting
            and not trainer.sanity_checking
            and self.logger is not None
            and every > 0
            and (trainer.current_epoch + 1) % every == 0
        )
        self._start(trainer, pl_module, "val", full=not fitting, draw=not fitting or logs_grid)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._add(outputs, batch, batch_idx)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._full:
            self._finish(trainer, "val")
        elif self._drawing:
            tiles = self._gathered_tiles(trainer)
            if tiles and self.logger is not None and trainer.is_global_zero:
                picture = predictions_grid(tiles, self.evaluation.legend())
                log_image(self.logger, "val_predictions", picture, trainer.global_step)
        self._drawing, self._samples = False, {}

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, pl_module, "test", full=True, draw=True)

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._add(outputs, batch, batch_idx)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish(trainer, "test")

    def _start(self, trainer: Trainer, pl_module: LightningModule, split: Split, full: bool, draw: bool) -> None:
        self._full, self._drawing = full, draw
        self._tiles = {}
        self._samples = self._sample_positions(trainer, split) if draw else {}
        if full:
            self.evaluation.to(pl_module.device)
            self.evaluation.reset()

    def _add(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._full:
            self.evaluation.update(outputs, batch)
        for position, slot in self._samples.get(batch_idx, []):
            self._tiles[slot] = self.evaluation.draw(outputs, batch, position)

    def _finish(self, trainer: Trainer, split: Split) -> None:
        result = self.evaluation.compute()  # on every process: torchmetrics gathers the states
        self.evaluation.reset()
        tiles = self._gathered_tiles(trainer)
        self._full, self._drawing, self._samples = False, False, {}
        if not trainer.is_global_zero:
            return
        folder = self.folder / split
        pictures = write_report(folder, result, tiles, self.evaluation.legend())
        self.written[split] = folder
        if self.metrics_file is not None:
            self.metrics_file.add(f"{split}_per_class", result.per_class())
        if self.logger is not None:
            for name, picture in pictures.items():
                log_image(self.logger, f"report/{split}_{name}", picture, trainer.global_step)

    def _sample_positions(self, trainer: Trainer, split: Split) -> dict[int, list[tuple[int, int]]]:
        """Where this process meets the grid's samples: `report.samples` of the evaluated images,
        chosen by seed, so the grid shows the same images in every epoch and every run."""
        loader: DataLoader[Any] | None = trainer.val_dataloaders if split == "val" else trainer.test_dataloaders
        batches = trainer.num_val_batches if split == "val" else trainer.num_test_batches
        if not isinstance(loader, DataLoader) or not isinstance(loader.sampler, EpochSampler) or not batches:
            return {}
        sampler, batch_size = loader.sampler, loader.batch_size or 1
        evaluated = min(sampler.size, int(batches[0]) * batch_size * sampler.world_size)
        generator = torch.Generator().manual_seed(self.seed)
        chosen = torch.randperm(evaluated, generator=generator)[: self.config.samples].sort().values.tolist()
        slots = {index: slot for slot, index in enumerate(chosen)}
        samples: dict[int, list[tuple[int, int]]] = {}
        for position, index in enumerate(sampler.indices()[: int(batches[0]) * batch_size]):
            if index in slots:
                samples.setdefault(position // batch_size, []).append((position % batch_size, slots.pop(index)))
        return samples

    def _gathered_tiles(self, trainer: Trainer) -> list[Tile]:
        """The tiles of every process (each draws the samples it evaluated), in grid order."""
        tiles = self._tiles
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            everyone: list[dict[int, Tile] | None] = [None] * trainer.world_size
            torch.distributed.all_gather_object(everyone, tiles)
            tiles = {slot: tile for part in everyone if part for slot, tile in part.items()}
        self._tiles = {}
        return [tiles[slot] for slot in sorted(tiles)]


def write_report(
    folder: Path, result: EvaluationResult, tiles: Sequence[Tile], legend: Sequence[tuple[str, Colour]] = ()
) -> dict[str, Tensor]:
    """Write the report files into `folder` (replacing an earlier report there); returns the
    pictures by name (uint8 (3, H, W)), for the logger."""
    table = [[name, *values] for name, values in result.rows.items()]
    files: dict[str, str | bytes] = {"per_class.csv": _csv(["class", *result.columns], table)}
    labels = result.confusion_labels
    matrix = [[label, *row] for label, row in zip(labels, result.confusion.tolist(), strict=True)]
    files["confusion_matrix.csv"] = _csv(["true \\ predicted", *labels], matrix)
    figures = {"confusion_matrix": confusion_matrix_figure(result.confusion, labels, result.confusion_title)}
    if result.curves:
        points = [
            [curve.name, threshold, precision, recall]
            for curve in result.curves
            for threshold, precision, recall in zip(curve.thresholds, curve.precision, curve.recall, strict=True)
        ]
        files["pr_curve.csv"] = _csv(["class", "threshold", "precision", "recall"], points)
        figures["pr_curve"] = pr_curve_figure(result.curves, result.curve_title)
    pictures = {}
    for name, figure in figures.items():
        files[f"{name}.png"], pictures[name] = _render(figure)
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
    """Counts on the left, each row divided by its total (what share of each true class went where) on the right."""
    counts = counts.cpu().to(torch.float64)
    totals = counts.sum(dim=1, keepdim=True)
    shares = torch.where(totals > 0, counts / totals.clamp(min=1), torch.zeros_like(counts))
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
        _matrix(axes, values, labels, subtitle, text)
    return figure


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
    """One precision-recall curve per class, its average precision in the legend."""
    figure = Figure(figsize=(7, 6), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    colours = class_colours(len(curves))
    for curve, colour in zip(curves, colours, strict=True):
        label = f"{curve.name} (AP {curve.average_precision:.3f})"
        axes.plot(curve.recall, curve.precision, color=_fraction(colour), label=label)
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    return figure


def predictions_grid(tiles: Sequence[Tile], legend: Sequence[tuple[str, Colour]] = ()) -> Tensor:
    """The tiles in a near-square grid, each under its caption (red for a mistake), enlarged to at
    least `TILE_HEIGHT` pixels without smoothing, and the colour of each class along the bottom;
    uint8 (3, H, W). Drawn with PIL rather than matplotlib: fit sends it to the logger every epoch."""
    height, width = tiles[0].image.shape[-2:]
    scale = max(1, math.ceil(TILE_HEIGHT / height))
    height, width = height * scale, width * scale
    columns = max(1, min(len(tiles), math.ceil(math.sqrt(len(tiles) * height / width))))
    rows = math.ceil(len(tiles) / columns)
    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), FONT_SIZE)
    caption_height = CAPTION_LINES * LINE + MARGIN
    cell_width, cell_height = width + MARGIN, height + caption_height + MARGIN
    grid_width, grid_height = columns * cell_width + MARGIN, rows * cell_height + MARGIN
    keys, left, line = [], MARGIN, 0  # the legend's entries, in as many lines as the grid's width needs
    for name, colour in legend:
        span = FONT_SIZE + 4 + round(font.getlength(name)) + 3 * MARGIN
        if left > MARGIN and left + span > grid_width:
            left, line = MARGIN, line + 1
        keys.append((name, colour, left, grid_height + MARGIN + line * LINE))
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
    for name, colour, left, top in keys:
        draw.rectangle((left, top + 2, left + FONT_SIZE, top + 2 + FONT_SIZE), fill=colour)
        draw.text((left + FONT_SIZE + 4, top), name, fill="black", font=font)
    grid: Tensor = pil_to_tensor(canvas)
    return grid


def class_colours(count: int) -> list[Colour]:
    """A distinct colour per class (matplotlib's tab10, or tab20 for more), as RGB bytes."""
    colormap = colormaps["tab10" if count <= 10 else "tab20"]
    colours = []
    for index in range(count):
        red, green, blue, _ = colormap(index % colormap.N)
        colours.append((round(255 * red), round(255 * green), round(255 * blue)))
    return colours


def _fraction(colour: Colour) -> tuple[float, float, float]:
    """A colour as matplotlib takes it: each channel in [0, 1]."""
    red, green, blue = colour
    return red / 255, green / 255, blue / 255


def to_picture(image: Tensor, mean: Sequence[float] = (0.0,) * 3, std: Sequence[float] = (1.0,) * 3) -> Tensor:
    """A float image (normalised with `mean` and `std`, or in [0, 1]) as uint8 (3, H, W) on the CPU."""
    image = image.detach().float().cpu()
    image = image * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


def _render(figure: Figure) -> tuple[bytes, Tensor]:
    """The figure as a PNG file's bytes and as uint8 (3, H, W) pixels: rendered once for the file
    and the logger alike."""
    encoded = io.BytesIO()
    figure.savefig(encoded, format="png")
    with Image.open(encoded) as image:
        pixels: Tensor = pil_to_tensor(image.convert("RGB"))
    return encoded.getvalue(), pixels


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
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
