"""Lightning Trainers from the config: the settings tried on this machine before anything is
written, `trainer.precision: auto` resolved, and the one-device Trainer of evaluation and prediction."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from lightning import Callback, Trainer
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.strategies import DDPStrategy

from .checkpoint_io import AtomicCheckpointIO
from .config import Config, TrainerConfig
from .errors import ConfigError, first_line
from .progress import progress_bar
from .quiet import silence_known_noise


def check_trainer_settings(config: Config) -> str:
    """Refuse an accelerator, device count, strategy or precision this machine cannot use, naming
    the key, before anything is written (Lightning would only fail once the fit has started).
    Returns what the settings come to here: `2 x CUDAAccelerator, 16-mixed`."""
    settings = config.trainer
    steps: dict[str, dict[str, Any]] = {
        "accelerator": {"accelerator": settings.accelerator},
        "devices": {"devices": settings.devices, "num_nodes": settings.num_nodes},
        "strategy": {"strategy": settings.strategy},
        "precision": {"precision": resolved_precision(settings)},
    }
    arguments: dict[str, Any] = {"logger": False, "enable_checkpointing": False, "enable_model_summary": False}
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.ERROR)  # the real Trainer reports the same devices and warnings again
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for key, values in steps.items():
                arguments.update(values)
                try:
                    trainer = Trainer(**arguments)
                except (MisconfigurationException, ValueError, RuntimeError, TypeError) as error:
                    got = getattr(settings, key)
                    raise ConfigError(f"trainer.{key}: {first_line(error)} (got {got!r})") from None
    finally:
        lightning_log.setLevel(level)
    return f"{trainer.num_devices} x {type(trainer.accelerator).__name__}, {trainer.precision}"


def resolved_precision(settings: TrainerConfig) -> str:
    """`trainer.precision`, `auto` made `bf16-mixed` where training runs on a CUDA GPU with bfloat16
    support (Ampere and later), else `32-true`."""
    if settings.precision != "auto":
        return settings.precision
    on_cuda = settings.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_cuda and torch.cuda.is_bf16_supported() else "32-true"


def build_trainer(config: Config, **overrides: Any) -> Trainer:
    """The Trainer the `trainer` section describes, with `overrides` (Trainer arguments) on top."""
    settings = config.trainer
    silence_known_noise()
    torch.set_float32_matmul_precision(settings.matmul_precision)
    arguments: dict[str, Any] = {
        "accelerator": settings.accelerator,
        "devices": settings.devices,
        "strategy": settings.strategy,
        "num_nodes": settings.num_nodes,
        "precision": resolved_precision(settings),
        "max_epochs": settings.max_epochs,
        "fast_dev_run": settings.fast_dev_run,
        "limit_train_batches": settings.limit_train_batches,
        "limit_val_batches": settings.limit_val_batches,
        "limit_test_batches": settings.limit_test_batches,
        "deterministic": settings.deterministic,
        "gradient_clip_val": settings.gradient_clip_val,
        "accumulate_grad_batches": settings.accumulate_grad_batches,
        "log_every_n_steps": settings.log_every_n_steps,
        "check_val_every_n_epoch": settings.check_val_every_n_epoch,
        "enable_progress_bar": config.callbacks.progress_bar,
        "enable_model_summary": False,  # progress.ModelSize says it in one line
        "plugins": [AtomicCheckpointIO()],  # never a torn checkpoint under its final name
    }
    arguments.update(overrides)
    trainer = Trainer(**arguments)
    if config.model.freeze_backbone_epochs and isinstance(trainer.strategy, DDPStrategy):
        # A frozen backbone has no gradients, which DDP takes for an error unless told to expect it
        # (what the strategy `ddp_find_unused_parameters_true` does, for whichever DDP was chosen).
        trainer.strategy._ddp_kwargs["find_unused_parameters"] = True
    return trainer


def single_device_trainer(config: Config, *callbacks: Callback) -> Trainer:
    """Evaluation and prediction on one device: no duplicated samples, one output file."""
    progress: list[Callback] = [progress_bar()] if config.callbacks.progress_bar else []
    return build_trainer(
        config,
        devices=1,
        num_nodes=1,
        strategy="auto",
        logger=False,
        enable_checkpointing=False,
        callbacks=[*callbacks, *progress],
    )
