"""How a command shows its progress: Rich's live bar on a terminal; where the output goes to a file
or a CI log, which a live bar never reaches, one line per finished epoch instead. And the model's
size, in one line, where Lightning would print a table of the LightningModule's children."""

from __future__ import annotations

import sys
import time
from numbers import Number

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

from .models.base import TaskModule


def progress_bar() -> ProgressBar:
    """Rich's bar where standard output is a terminal, else `EpochLines`."""
    return RichProgressBar() if sys.stdout.isatty() else EpochLines()


class EpochLines(ProgressBar):
    """`epoch 2/5: train_loss 0.4120, val_acc 0.9531 (12.3 s)` after each training epoch (with the
    validation that ends it), printed and flushed at once, by global rank zero only."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._started = time.perf_counter()

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        metrics = self.get_metrics(trainer, pl_module)
        shown = ", ".join(
            f"{name.removesuffix('_epoch')} {value:.4f}"
            for name, value in metrics.items()
            if isinstance(value, Number) and name != "v_num" and not name.endswith("_step")
        )
        seconds = time.perf_counter() - self._started
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {shown} ({seconds:.1f} s)", flush=True)


class ModelSize(Callback):
    """`<Model class>: 11.2 M parameters, 11.2 M trainable (44.7 MB)` when a fit starts, and while
    `model.freeze_backbone_epochs` holds the backbone, how much of it trains until then. Lightning's
    own summary table lists the module's children and a FLOPs count that is 0 without an example
    input; this says what matters once."""

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        parameters = list(pl_module.parameters())
        total = sum(parameter.numel() for parameter in parameters)
        trainable = sum(parameter.numel() for parameter in parameters if parameter.requires_grad)
        megabytes = sum(parameter.numel() * parameter.element_size() for parameter in parameters) / 1e6
        counts = f"{_count(total)} parameters, {_count(trainable)} trainable"
        if isinstance(pl_module, TaskModule) and trainer.current_epoch < pl_module.config.model.freeze_backbone_epochs:
            backbone, _ = pl_module.backbone_and_head()
            head = trainable - sum(parameter.numel() for parameter in backbone if parameter.requires_grad)
            thawed = pl_module.config.model.freeze_backbone_epochs + 1
            counts += f", {_count(head)} of them before epoch {thawed} (backbone frozen)"
        print(f"{type(pl_module).__name__}: {counts} ({megabytes:.1f} MB)", flush=True)


def _count(parameters: int) -> str:
    """`11.2 M`, or `2.1 k` for fewer than 100 000 (a classifier's head)."""
    return f"{parameters / 1e6:.1f} M" if parameters >= 100_000 else f"{parameters / 1e3:.1f} k"
