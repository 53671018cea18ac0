"""The contract between a task and the shared evaluation code: what each task's `Evaluation`
accumulates, logs and draws, and the result that the report writes.

A task's LightningModule owns its `Evaluation` and feeds it in every validation and test step;
at each epoch's end it logs `scalars()` (`val_acc`, `test_map_50`, ...), and the `EvaluationReport`
callback, in the loops that write a report, reads `compute()` from the same accumulators.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from .drawing import Colour

OutputT = TypeVar("OutputT")
BatchT = TypeVar("BatchT")
OVERALL = "(all classes)"
"""The name of the last row of `per_class.csv`: the task's metrics over all classes."""


@dataclass(frozen=True)
class Tile:
    """One sample of the prediction grid: its picture with the prediction (and the truth) drawn on."""

    image: Tensor
    """uint8, shape (3, H, W)."""
    caption: str
    """At most two lines."""
    mistake: bool
    """The caption is drawn in red: the prediction is wrong."""
    classes: frozenset[str] = frozenset()
    """The classes whose colours it shows (true or predicted): the grid's legend names only those."""


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


class TaskEvaluation(nn.Module, abc.ABC, Generic[OutputT, BatchT]):
    """A task's evaluation: torchmetrics accumulators fed from each evaluation step's outputs, and
    the drawing of one sample's prediction. A submodule of the task's LightningModule, so that its
    metrics follow the model's device.

    The logged scalars are accumulated in every loop; what only the report shows (the confusion
    matrix, the curves, per-class tables) only while `reporting` is on, which keeps the validation
    epochs of `fit` cheap. Torchmetrics keeps each metric's computed value until its next update or
    reset, so the report and the scalars read one computation, gathered once under DDP.
    """

    progress_bar: tuple[str, ...] = ()
    """The scalars shown in the progress bar while fitting."""

    def __init__(self) -> None:
        super().__init__()
        self.reporting = False
        """Feed the report's metrics too: set by `EvaluationReport` for the loops that write a report."""

    @abc.abstractmethod
    def update(self, outputs: OutputT, batch: BatchT) -> None:
        """Add one batch: what the model's validation or test step returned, and the batch."""

    @abc.abstractmethod
    def scalars(self) -> dict[str, Tensor]:
        """The metrics logged at each epoch's end, named without the split (`acc`, `map_50`, ...)."""

    @abc.abstractmethod
    def compute(self) -> EvaluationResult:
        """The report over every batch added since `reset` while `reporting` (gathered from every
        process under DDP)."""

    def reset(self) -> None:
        """Empty the accumulators and stop reporting, for the next loop."""
        for child in self.children():
            if isinstance(child, Metric | MetricCollection):
                child.reset()  # a collection resets its own metrics: they share state in compute groups
        self.reporting = False

    @abc.abstractmethod
    def draw(self, outputs: OutputT, batch: BatchT, position: int) -> Tile:
        """The sample at `position` of the batch, with its prediction and ground truth drawn."""

    def legend(self) -> list[tuple[str, Colour]]:
        """The class of each colour on the tiles, if colours stand for classes (the grid names
        those of its tiles' `classes`)."""
        return []
