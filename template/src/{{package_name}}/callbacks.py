"""The callbacks every `fit` uses: Lightning's own, plus ours: `metrics.json`, exact resume, a clean
stop on Ctrl-C / SIGTERM or a non-finite loss, training speed."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
)
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor

from . import PROGRAM
from .averaging import ExponentialMovingAverage
from .config import Config
from .errors import RunStoppedError
from .files import write_atomic
from .progress import ModelSize, progress_bar

LAST_CHECKPOINT = "last.ckpt"


class MetricsFile(Callback):
    """Keeps `metrics.json` current as plain data: the validation metrics after `fit` (those of
    the last epoch, replaced by the best checkpoint's when the runner validates it), the test
    metrics after `test`, the best checkpoint, and what `add` gives (the per-class tables).
    Written atomically, by rank zero only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.metrics: dict[str, Any] = {}

    def add(self, key: str, value: Any) -> None:
        """Keep `value` under `key`; written with the next metrics."""
        self.metrics[key] = value

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.metrics["val"] = _numbers(trainer.callback_metrics, prefix="val_")
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
            self.metrics["best_checkpoint"] = checkpoint.best_model_path
            if checkpoint.best_model_score is not None:
                self.metrics["best_score"] = {checkpoint.monitor: float(checkpoint.best_model_score)}
        self._write(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:
            self.metrics["val"] = _numbers(trainer.callback_metrics, prefix="val_")
            self._write(trainer)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.metrics["test"] = _numbers(trainer.callback_metrics, prefix="test_")
        self._write(trainer)

    def _write(self, trainer: Trainer) -> None:
        if not trainer.is_global_zero:
            return
        write_atomic(self.path, json.dumps(self.metrics, indent=2) + "\n", "the metrics")


def _numbers(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {name: float(value) for name, value in sorted(metrics.items()) if name.startswith(prefix)}


class RandomState(Callback):
    """Keeps the random number generators' states in every checkpoint (Lightning's own checkpoints
    do not), and puts them back right before a resumed fit trains its first batch, so that dropout
    and any other randomness in the training step continue as if the run had never stopped."""

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": random.getstate(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self._to_restore is None:
            return
        torch.set_rng_state(self._to_restore["torch"])
        if self._to_restore["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._to_restore["cuda"])
        random.setstate(self._to_restore["python"])
        self._to_restore = None


class StopOnSignal(Callback):
    """Ctrl-C (SIGINT) or SIGTERM while training: finish the current step, write `last.ckpt`, and
    stop with `RunStoppedError`, which says how to resume. A second Ctrl-C stops at once."""

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():  # only the main thread may handle signals
            self._previous = {signum: signal.signal(signum, self._receive) for signum in _STOP_SIGNALS}

    def _receive(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._stop_if_asked(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stop_if_asked(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._restore_handlers()

    def _stop_if_asked(self, trainer: Trainer) -> None:
        if self.received is None:
            return
        trainer.save_checkpoint(self.checkpoint)
        raise RunStoppedError(
            f"{self.received.name}: stopped at epoch {trainer.current_epoch}, step {trainer.global_step}; "
            f"resume with: {PROGRAM} fit --resume {self.checkpoint}",
            exit_code=128 + self.received.value,
        )

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnNonFiniteLoss(Callback):
    """A NaN or infinite training loss stops the run, naming the step, before any checkpoint could
    store the broken weights.

    Reading a loss on a GPU waits for the GPU, so there the losses are gathered as they come and
    read together every `window` steps (`trainer.log_every_n_steps` in a fit, when Lightning reads
    the logged metrics anyway), before each checkpoint is written and at each epoch's end. On a
    CPU, where reading costs nothing, every loss is read at once.
    """

    def __init__(self, checkpoint: Path, window: int) -> None:
        self.checkpoint = checkpoint
        self.window = window
        self._unread: list[tuple[Tensor, int, int, int]] = []
        """(loss, epoch, step, batch of the epoch) not checked yet, oldest first."""

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, Tensor):
            return
        self._unread.append((loss.detach(), trainer.current_epoch, trainer.global_step, batch_idx))
        if loss.device.type == "cpu" or len(self._unread) >= self.window:
            self._check()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check()

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        self._check()  # raising here keeps the checkpoint from being written

    def _check(self) -> None:
        unread, self._unread = self._unread, []
        if not unread:
            return
        finite = torch.stack([torch.isfinite(loss).all() for loss, *_ in unread])
        if bool(finite.all()):
            return
        loss, epoch, step, batch_idx = unread[int((~finite).nonzero()[0])]
        kept = (
            f"the last good checkpoint is {self.checkpoint}"
            if self.checkpoint.is_file()
            else "no checkpoint was written before it"
        )
        raise RunStoppedError(
            f"train_loss is {loss.item()} at epoch {epoch}, step {step} "
            f"(batch {batch_idx} of the epoch); {kept}. Try a lower optim.lr or set trainer.gradient_clip_val",
            exit_code=1,
        )


class ConfiguredEarlyStopping(EarlyStopping):
    """Early stopping with the configured patience in a resumed fit too: Lightning's takes the
    checkpoint's back with the rest of its state (`key_policy.POLICY` lets a resume change it)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience


class TrainingThroughput(Callback):
    """Logs `train_images_per_sec`: the images all processes together train on per second, over
    the last `window` steps (loading, forward, backward and optimizer step), `trainer.log_every_n_steps`
    in a fit, so that each logged value covers the steps since the one before.

    Lightning's `ThroughputMonitor` waits for the GPU after every step (`torch.cuda.synchronize`)
    and needs a FLOPs count; this reads the clock only, as the logged window spans several steps,
    and logs on the logging steps only, as each logged number is copied to the device.
    Every task's batch is `(images, targets)`, `images` a tensor or a list with one entry per image.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._marks: deque[tuple[float, int]] = deque()
        """(time at a batch's end, images in that batch over all processes), oldest first."""

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restart()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restart()  # validation in the middle of an epoch is no training time

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if not self._marks:  # a fit resumed in the middle of an epoch: its first batch starts the clock
            self._marks.append((now, 0))
            return
        self._marks.append((now, len(batch[0]) * trainer.world_size))
        if len(self._marks) > self.window + 1:
            self._marks.popleft()
        if trainer.global_step % self.window == 0:  # Lightning's logging steps (without gradient accumulation)
            start = self._marks[0][0]
            images = sum(count for _, count in self._marks)
            pl_module.log("train_images_per_sec", images / (now - start), on_step=True, on_epoch=False, batch_size=1)

    def _restart(self) -> None:
        self._marks.clear()
        self._marks.append((time.perf_counter(), 0))


def build_callbacks(config: Config, run_dir: Path, metrics_file: MetricsFile) -> list[Callback]:
    """Best and latest checkpoints, early stopping, learning-rate curve, `metrics_file`, training
    speed, progress bar, the weights' average, and what makes a stopped fit resumable exactly."""
    settings, checkpointing = config.callbacks, config.checkpoint
    checkpoints = run_dir / "checkpoints"
    last = checkpoints / LAST_CHECKPOINT
    callbacks: list[Callback] = [
        # First, so that `trainer.checkpoint_callback` and `ckpt_path="best"` mean the best model.
        ModelCheckpoint(
            dirpath=checkpoints,
            filename="best-epoch{epoch:02d}",
            auto_insert_metric_name=False,
            monitor=settings.monitor,
            mode=settings.monitor_mode,
            save_top_k=settings.save_top_k,
        ),
        # Since Lightning 2.6, `save_last=True` refreshes last.ckpt only when a best checkpoint is
        # saved; an unmonitored checkpoint keeps last.ckpt at the latest epoch, for resuming.
        ModelCheckpoint(dirpath=checkpoints, filename=last.stem, enable_version_counter=False),
        LearningRateMonitor(logging_interval="epoch"),
        ModelSize(),
        metrics_file,
        RandomState(),
        StopOnSignal(last),
        StopOnNonFiniteLoss(last, window=config.trainer.log_every_n_steps),
    ]
    if checkpointing.every_n_train_steps is not None:
        callbacks.append(
            ModelCheckpoint(
                dirpath=checkpoints,
                filename=last.stem,
                enable_version_counter=False,
                every_n_train_steps=checkpointing.every_n_train_steps,
            )
        )
    if config.model.ema:
        callbacks.append(ExponentialMovingAverage(config.model.ema_decay))
    if settings.early_stopping:
        callbacks.append(
            ConfiguredEarlyStopping(monitor=settings.monitor, mode=settings.monitor_mode, patience=settings.patience)
        )
    if settings.throughput:
        callbacks.append(TrainingThroughput(window=config.trainer.log_every_n_steps))
    if settings.progress_bar:
        callbacks.append(progress_bar())
    return callbacks
