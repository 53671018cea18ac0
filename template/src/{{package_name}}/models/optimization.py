"""Optimizer and learning-rate schedule from `OptimConfig`, shared by every model (the backbone in a
parameter group of its own), and what puts the configured values into a resumed fit's optimizer and
schedule, which Lightning restores from the checkpoint with the checkpoint's values."""

from __future__ import annotations

import math

import torch
from lightning import Trainer
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch.optim.lr_scheduler import LambdaLR

from ..config import OptimConfig

GROUPS = ("backbone", "head")
"""The optimizer's parameter groups, in this order: `models.finetuning` says which is which; the
learning-rate monitor logs each under its name."""


class Schedule:
    """The learning-rate factor of each optimizer step: a linear warm-up over `warmup_steps`, then
    a cosine decay to zero over the rest of `total_steps`, or a constant. A plain object, so that
    `LambdaLR` keeps its settings in the checkpoint, and a closed form of the step, so that a
    resumed fit computes the same rates bit for bit."""

    def __init__(self, total_steps: int, warmup_steps: int, cosine: bool) -> None:
        self.total_steps = max(1, total_steps)
        self.warmup_steps = warmup_steps
        self.cosine = cosine

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if not self.cosine:
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        return (1 + math.cos(math.pi * min(step - self.warmup_steps, span) / span)) / 2


def configure_optimization(
    backbone: list[torch.nn.Parameter], head: list[torch.nn.Parameter], config: OptimConfig, schedule: Schedule
) -> OptimizerLRSchedulerConfig:
    """The optimizer, with the backbone's and the other parameters in two groups, and a per-step
    `schedule`, in Lightning's format."""
    groups = [
        {"params": parameters, "lr": lr, "name": name}
        for name, parameters, lr in zip(GROUPS, (backbone, head), group_lrs(config), strict=True)
    ]
    optimizer: torch.optim.Optimizer
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def group_lrs(config: OptimConfig) -> list[float]:
    """The base learning rate of each of `GROUPS`."""
    return [config.lr * config.backbone_lr_scale, config.lr]


def planned_schedule(trainer: Trainer, config: OptimConfig) -> Schedule:
    """The schedule over `schedule_length` steps, its warm-up `optim.warmup_epochs` of this fit's epochs."""
    total = schedule_length(trainer)  # first: it loads the training data, whose batches are counted
    warmup = round(config.warmup_epochs * steps_per_epoch(trainer))
    return Schedule(total, warmup, cosine=config.scheduler == "cosine")


def steps_per_epoch(trainer: Trainer) -> int:
    """Optimizer steps per epoch; 0 while the training data is not loaded (a fit Lightning bounds by
    `max_steps` alone does not load it before training; this project's fits count epochs)."""
    batches = trainer.num_training_batches
    return math.ceil(batches / trainer.accumulate_grad_batches) if math.isfinite(batches) else 0


def schedule_length(trainer: Trainer) -> int:
    """The optimizer steps the schedule spans: the steps taken so far and the steps still to come
    under the current configuration. For a new fit, Lightning's estimate of all its steps; for a
    resumed one whose `trainer.max_epochs` (or, at an epoch's end, batches per epoch) changed, the
    schedule continues over the longer or shorter run."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    estimated = int(trainer.estimated_stepping_batches)  # loads the training data once, if not yet
    per_epoch = steps_per_epoch(trainer)
    # Restored from an epoch's end, the batch count is still the finished epoch's.
    in_epoch = (
        0
        if progress.is_last_batch
        else math.ceil(progress.current.state_dict()["processed"] / trainer.accumulate_grad_batches)
    )
    steps_left = estimated - (trainer.current_epoch * per_epoch + in_epoch)
    return trainer.global_step + max(0, steps_left)


def apply_settings(
    optimizer: torch.optim.Optimizer, scheduler: LambdaLR, config: OptimConfig, schedule: Schedule
) -> None:
    """Put `config` into a restored optimizer and its schedule (`planned_schedule` for the resumed
    fit): the weight decay and momentum, the base learning rates and the schedule's steps. When one
    of those changed, each learning rate becomes what the new schedule gives at the restored step,
    and goes on from there; a fit resumed as configured changes nothing, so that it continues bit
    for bit."""
    for group in optimizer.param_groups:
        group["weight_decay"] = config.weight_decay
        if "momentum" in group:  # SGD
            group["momentum"] = config.momentum
    base_lrs = group_lrs(config)
    if scheduler.base_lrs == base_lrs and all(vars(kept) == vars(schedule) for kept in scheduler.lr_lambdas):
        return
    scheduler.base_lrs = list(base_lrs)
    scheduler.lr_lambdas = [schedule] * len(optimizer.param_groups)
    factor = schedule(scheduler.last_epoch)
    for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
        group["initial_lr"], group["lr"] = base, base * factor
    scheduler._last_lr = [base * factor for base in base_lrs]  # what get_last_lr() says until the next step
