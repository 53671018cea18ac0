"""Optimizer and learning-rate schedule from `OptimConfig`, shared by every model."""

from __future__ import annotations

from collections.abc import Iterable

import torch
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
