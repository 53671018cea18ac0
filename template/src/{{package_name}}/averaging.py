"""`model.ema`: an exponential moving average of the weights, on Lightning's `WeightAveraging`.

Lightning's callback validates the fit with the average, writes it as every checkpoint's
`state_dict` (so the best checkpoint, `predict`, `evaluate`, `inference.py` and `export` use it
without knowing) and keeps the weights being trained beside it, so that a resumed fit goes on with
both. Two things are ours: the decay warms up, so that a short fit's average is not mostly its random
first weights; and the swap happens while fitting only, so that validating the best checkpoint
after the fit validates that checkpoint, not the fit's last average.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor

WARMUP = 10
"""After n updates the decay is at most `(1 + n) / (WARMUP + n)`."""


class WarmedUpDecay:
    """The average's update: `average + (current - average) * (1 - decay)`, the decay warmed up. On the
    tensors' device, with no read of the update count back to the host."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, average: Tensor, current: Tensor, updates: Tensor) -> Tensor:
        decay = torch.clamp((1 + updates) / (WARMUP + updates), max=self.decay)
        return average + (current - average) * (1 - decay)


class ExponentialMovingAverage(WeightAveraging):
    """Lightning's weight averaging with a warmed-up exponential decay, updated after every optimizer
    step, the average kept on the device that trains."""

    def __init__(self, decay: float) -> None:
        super().__init__(avg_fn=WarmedUpDecay(decay))

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # The model reaches its device only after this hook: the average is made there directly.
        self._device = trainer.strategy.root_device
        super().setup(trainer, pl_module, stage)

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_validation_epoch_end(trainer, pl_module)

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        # Loading a checkpoint to validate or test it: its `state_dict`, the average, is what counts.
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
