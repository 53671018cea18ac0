"""The counts every task's evaluation is computed from, kept in memory that does not depend on the
batch or on `trainer.deterministic`: a confusion matrix, and per class how the scores of its
samples and of the others fall between fixed thresholds (the precision-recall curves).

torchmetrics counts with a bincount, which under torch's deterministic algorithms it replaces by
comparing every sample with every cell: (samples x classes^2 x thresholds) integers per batch,
gigabytes at ten classes and terabytes at a thousand. These metrics add ones with
`index_put_(accumulate=True)`, deterministic on every device, in memory for the batch's indices.
The scores derived from the counts are torchmetrics' own definitions, zero where undefined.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import Metric


def add_ones(counts: Tensor, index: Tensor) -> None:
    """Add one to `counts` (any shape, read flat) at each of the flat indices `index`."""
    ones = torch.ones(index.shape, dtype=counts.dtype, device=counts.device)
    counts.view(-1).index_put_((index.reshape(-1),), ones, accumulate=True)


class ConfusionCounts(Metric):
    """Counts of (true class, predicted class), shape (classes, classes); samples (or pixels) whose
    true label is `ignore_index` count nowhere."""

    full_state_update = False
    counts: Tensor

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        zeros = torch.zeros(num_classes, num_classes, dtype=torch.long)
        self.add_state("counts", default=zeros, dist_reduce_fx="sum")

    def update(self, predicted: Tensor, truth: Tensor) -> None:
        """Class indices of any one shape, predicted and true."""
        predicted, truth = predicted.reshape(-1), truth.reshape(-1)
        if self.ignore_index is not None:
            counted = truth != self.ignore_index
            predicted, truth = predicted[counted], truth[counted]
        add_ones(self.counts, truth * self.num_classes + predicted)

    def compute(self) -> Tensor:
        return self.counts


def class_scores(counts: Tensor) -> dict[str, Tensor]:
    """Each class's precision, recall, F1 (Dice) and IoU from a confusion matrix (true, predicted)."""
    counts = counts.float()
    hits, predicted, true = counts.diagonal(), counts.sum(dim=0), counts.sum(dim=1)
    return {
        "precision": _ratio(hits, predicted),
        "recall": _ratio(hits, true),
        "f1": _ratio(2 * hits, predicted + true),
        "iou": _ratio(hits, predicted + true - hits),
    }


def macro(scores: Tensor, counts: Tensor) -> Tensor:
    """The mean of the classes' `scores` over the classes in the truth or the predictions (as
    torchmetrics' macro average: a class that never occurs has no score to average)."""
    occurs = (counts.sum(dim=0) + counts.sum(dim=1)) > 0
    return scores[occurs].mean() if bool(occurs.any()) else scores.new_zeros(())


def accuracy(counts: Tensor) -> Tensor:
    """The share of all samples on the diagonal."""
    return _ratio(counts.diagonal().sum().float(), counts.sum().float())


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), torch.zeros_like(numerator))


class ScoreCounts(Metric):
    """Per class, how many of its own samples (positives) and of the others' (negatives) score at
    least each of `thresholds` evenly spaced over [0, 1]; kept as counts per bin between thresholds,
    shape (classes, thresholds, 2): the curves' memory, whatever the number of samples."""

    full_state_update = False
    counts: Tensor
    thresholds: Tensor

    def __init__(self, num_classes: int, thresholds: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.register_buffer("thresholds", torch.linspace(0, 1, thresholds), persistent=False)
        zeros = torch.zeros(num_classes, thresholds, 2, dtype=torch.long)
        self.add_state("counts", default=zeros, dist_reduce_fx="sum")

    def update(self, scores: Tensor, truth: Tensor) -> None:
        """Scores in [0, 1], shape (samples, classes), and the true class of each sample."""
        steps = len(self.thresholds)
        bins = torch.bucketize(scores.detach(), self.thresholds, right=True) - 1  # the highest threshold reached
        positive = nn.functional.one_hot(truth, self.num_classes)
        classes = torch.arange(self.num_classes, device=scores.device)
        index = (classes * steps + bins) * 2 + positive
        add_ones(self.counts, index[bins >= 0])  # a score below every threshold counts at none

    def compute(self) -> Tensor:
        return self.counts


def precision_recall(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Each class's precision and recall at each threshold from `ScoreCounts`' counts, shape
    (classes, thresholds + 1): NaN where undefined (no sample scores that high, or the class has no
    sample), and a last point past every score, precision 1 and recall 0, as torchmetrics' curves."""
    reached = counts.flip(1).cumsum(dim=1).flip(1).float()  # at or above each threshold
    hits, false_alarms = reached[..., 1], reached[..., 0]
    positives = counts[:, :, 1].sum(dim=1, keepdim=True).float()
    precision = hits / (hits + false_alarms)
    recall = hits / positives
    ones, zeros = torch.ones_like(positives), torch.zeros_like(positives)
    return torch.cat([precision, ones], dim=1), torch.cat([recall, zeros], dim=1)


def average_precision(precision: Tensor, recall: Tensor) -> Tensor:
    """Each class's area under its curve, as steps: the sum of the precision at each threshold
    times the recall lost to the next (undefined values as 0)."""
    precision, recall = precision.nan_to_num(0.0), recall.nan_to_num(0.0)
    return -((recall[:, 1:] - recall[:, :-1]) * precision[:, :-1]).sum(dim=1)
