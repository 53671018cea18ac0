"""The evaluation report: what a model gets right and wrong, per class and in pictures.

After `fit` (the best checkpoint, on val and on test), `validate` and `test`, `report/<split>/`
holds `per_class.csv`, `confusion_matrix.csv` + `.png`, the precision-recall curves where the task
has them (`pr_curve.csv` + `.png`), `predictions.png`, a grid of sample images with what the
model predicted drawn on them (`figures.py` writes them), and `tta.txt`, the test-time
augmentation the predictions merged (`model.tta`). The per-class numbers and the augmentation
also go to `metrics.json` and the pictures to the logger. While `fit` runs, the grid goes to the logger every
`report.log_every_n_epochs` validation epochs, drawn from predictions the validation step made anyway.

The numbers come from the model's own `evaluation` (a `TaskEvaluation`), the one whose scalars
the model logs: this callback only asks it to feed the report's metrics too, and reads the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader

from .callbacks import MetricsFile
from .config import ReportConfig
from .figures import predictions_grid, write_report
from .loggers import ExperimentLogger, log_image
from .models.base import TaskModule
from .task_evaluation import TaskEvaluation, Tile
from .tta import describe

Split = Literal["val", "test"]


@runtime_checkable
class OrderedSampler(Protocol):
    """What the report needs of an evaluation loader's sampler to know where the grid's samples
    pass: the data set's size, the processes sharing it, and this process's indices in order
    (`data.splits.EpochSampler` is one)."""

    size: int
    world_size: int

    def indices(self) -> list[int]: ...


class EvaluationReport(Callback):
    """Writes `<folder>/<split>/` after each `validate` and `test` (the runner validates the best
    checkpoint after `fit`), and sends the prediction grid to `logger` while fitting.

    The grid's samples are `report.samples` images of the split chosen by `seed`, the same in every
    run; each is drawn when the evaluation loop passes it, so nothing is predicted twice.
    """

    def __init__(
        self,
        config: ReportConfig,
        seed: int,
        folder: Path,
        logger: ExperimentLogger | None = None,
        metrics_file: MetricsFile | None = None,
    ) -> None:
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
        self._draw(pl_module, outputs, batch, batch_idx)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._full:
            self._finish(trainer, pl_module, "val")
        elif self._drawing:
            tiles = self._gathered_tiles(trainer)
            if tiles and self.logger is not None and trainer.is_global_zero:
                picture = predictions_grid(tiles, _evaluation(pl_module).legend())
                log_image(self.logger, "val_predictions", picture, trainer.global_step)
        self._drawing, self._samples = False, {}

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer, pl_module, "test", full=True, draw=True)

    on_test_batch_end = on_validation_batch_end  # the same drawing as each batch passes

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish(trainer, pl_module, "test")

    def _start(self, trainer: Trainer, pl_module: LightningModule, split: Split, full: bool, draw: bool) -> None:
        self._full, self._drawing = full, draw
        self._tiles = {}
        self._samples = self._sample_positions(trainer, split) if draw else {}
        if full:
            _evaluation(pl_module).reporting = True  # the model's steps feed the report's metrics too

    def _draw(self, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        for position, slot in self._samples.get(batch_idx, []):
            self._tiles[slot] = _evaluation(pl_module).draw(outputs, batch, position)

    def _finish(self, trainer: Trainer, pl_module: LightningModule, split: Split) -> None:
        # On every process: torchmetrics gathers the states. Lightning calls this hook before the
        # model's, which logs the scalars from the same computation and then resets the evaluation.
        evaluation = _evaluation(pl_module)
        result = evaluation.compute()
        tta = describe(_task_module(pl_module).tta)
        tiles = self._gathered_tiles(trainer)
        self._full, self._drawing, self._samples = False, False, {}
        if not trainer.is_global_zero:
            return
        folder = self.folder / split
        pictures = write_report(folder, result, tiles, evaluation.legend(), tta)
        self.written[split] = folder
        if self.metrics_file is not None:
            self.metrics_file.add(f"{split}_per_class", result.per_class())
            self.metrics_file.add(f"{split}_tta", tta)
        if self.logger is not None:
            for name, picture in pictures.items():
                log_image(self.logger, f"report/{split}_{name}", picture, trainer.global_step)

    def _sample_positions(self, trainer: Trainer, split: Split) -> dict[int, list[tuple[int, int]]]:
        """Where this process meets the grid's samples: `report.samples` of the evaluated images,
        chosen by seed, so the grid shows the same images in every epoch and every run."""
        loader: DataLoader[Any] | None = trainer.val_dataloaders if split == "val" else trainer.test_dataloaders
        batches = trainer.num_val_batches if split == "val" else trainer.num_test_batches
        if not isinstance(loader, DataLoader) or not isinstance(loader.sampler, OrderedSampler) or not batches:
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


def _evaluation(pl_module: LightningModule) -> TaskEvaluation[Any, Any]:
    return _task_module(pl_module).evaluation


def _task_module(pl_module: LightningModule) -> TaskModule[Any, Any]:
    if not isinstance(pl_module, TaskModule):
        raise TypeError(f"the evaluation report needs a task's model, not {type(pl_module).__name__}")
    return pl_module
