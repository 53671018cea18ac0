"""Optimizer and learning-rate schedule from `OptimConfig`, shared by every model, and what puts the
configured values into a resumed fit's optimizer and schedule, which Lightning restores from the
checkpoint with the checkpoint's values."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from lightning import Trainer
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

from ..config import OptimConfig


def configure_optimization(
    parameters: Iterable[torch.nn.Parameter], config: OptimConfig, total_steps: int
) -> OptimizerLRSchedulerConfig:
    """The optimizer plus a per-step schedule spanning `total_steps`, in Lightning's format."""
    optimizer: torch.optim.Optimizer
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    scheduler: torch.optim.lr_scheduler.LRScheduler
    if config.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def schedule_length(trainer: Trainer) -> int:
    """The optimizer steps the schedule spans: the steps taken so far and the steps still to come
    under the current configuration. For a new fit, Lightning's estimate of all its steps; for a
    resumed one whose `trainer.max_epochs` (or, at an epoch's end, batches per epoch) changed, the
    schedule continues over the longer or shorter run."""
    epoch_loop = trainer.fit_loop.epoch_loop
    progress = epoch_loop.batch_progress
    per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
    # Restored from an epoch's end, the batch count is still the finished epoch's.
    in_epoch = (
        0
        if progress.is_last_batch
        else math.ceil(progress.current.state_dict()["processed"] / trainer.accumulate_grad_batches)
    )
    steps_left = int(trainer.estimated_stepping_batches) - (trainer.current_epoch * per_epoch + in_epoch)
    return trainer.global_step + max(0, steps_left)


def apply_settings(
    optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler, config: OptimConfig, steps: int
) -> None:
    """Put `config` into a restored optimizer and its schedule (of `steps` in all, `schedule_length`):
    the weight decay and momentum, and the learning rate as the schedule's base. When the base or
    the schedule's length changed, the learning rate becomes what the schedule gives at the restored
    step, and the schedule continues from there; a fit resumed as configured changes nothing, so that
    it continues bit for bit."""
    for group in optimizer.param_groups:
        group["weight_decay"] = config.weight_decay
        if "momentum" in group:  # SGD
            group["momentum"] = config.momentum
    base_lrs: list[float | torch.Tensor] = [config.lr] * len(optimizer.param_groups)
    cosine = scheduler if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) else None
    if scheduler.base_lrs == base_lrs and (cosine is None or cosine.T_max == max(1, steps)):
        return
    scheduler.base_lrs = base_lrs
    lr = config.lr
    if cosine is not None:
        cosine.T_max = max(1, steps)
        progress = min(cosine.last_epoch, cosine.T_max) / cosine.T_max
        lr = cosine.eta_min + (config.lr - cosine.eta_min) * (1 + math.cos(math.pi * progress)) / 2
    for group in optimizer.param_groups:
        group["initial_lr"], group["lr"] = config.lr, lr
    scheduler._last_lr = [lr] * len(optimizer.param_groups)  # what get_last_lr() says until the next step
