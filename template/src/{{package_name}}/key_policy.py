"""What each config key means to a checkpoint, decided here and nowhere else:

- which keys a resumed fit may change (`POLICY`): a resume continues the checkpoint's training,
  so a key it may change is really applied (a new learning rate reaches the optimizer and the
  schedule, a longer `trainer.max_epochs` extends the schedule), and any other change is refused,
  naming the key, before anything is written: `config.yaml` and the checkpoints only ever record
  the values a fit used;
- which keys a checkpoint may hold that this project does not know (`compatible_config`): only
  `seed`, `data` and `model` shape the model and its data; a stored value of any other section
  that this project's config refuses (another logger's section after `copier update`, a key of an
  older version) is left out, so the checkpoint still loads.

This module imports no torch, so the command line reads checkpoints' configs through it cheaply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

from pydantic import ValidationError

from .config import Config, LoggerConfig, describe_validation_error
from .errors import ConfigError


class Change(Enum):
    """What a resumed fit may do with a key's value."""

    APPLIED = "applied"
    """Change it: the resumed fit uses the new value from its first step."""
    AT_EPOCH_END = "at epoch end"
    """Change it only when the checkpoint was written at an epoch's end: the key decides how an
    epoch is cut into batches and shared between processes, so the middle of an epoch under the
    old value is no position under the new one."""
    FIXED = "fixed"
    """Keep the checkpoint's value."""


POLICY: dict[str, tuple[Change, str]] = {
    # A key's own entry wins over its section's. The reasons are what a refusal says.
    "seed": (Change.FIXED, "it chose the validation split and every epoch's order"),
    "output_dir": (Change.APPLIED, ""),  # where `--resume last` looks; the run stays in its directory
    # `data.root` and `data.format` fall under `data`: the data copied elsewhere, or its files read as another format.
    "data": (Change.AT_EPOCH_END, "it decides which samples an epoch has, in which batches"),
    "data.val_fraction": (Change.FIXED, "images trained on would join the validation split"),
    "data.folds": (Change.FIXED, "images trained on would join the validation split"),
    "data.fold": (Change.FIXED, "images trained on would join the validation split"),
    "data.mean": (Change.FIXED, "the network was trained on images normalised with it"),
    "data.std": (Change.FIXED, "the network was trained on images normalised with it"),
    "data.num_workers": (Change.APPLIED, ""),
    "data.pin_memory": (Change.APPLIED, ""),
    "data.persistent_workers": (Change.APPLIED, ""),
    "data.ignore_index": (Change.FIXED, "the checkpoint's weights were trained with these pixels left out"),
    "model": (Change.FIXED, "the checkpoint's weights were trained as this network, with this loss"),
    "model.pretrained": (Change.FIXED, "only a new fit starts from published weights"),
    "model.weights": (Change.FIXED, "only a new fit starts from a weights file"),
    "model.dice_weight": (Change.FIXED, "the checkpoint's weights were trained with this loss"),
    "model.class_weights": (Change.FIXED, "the checkpoint's weights were trained with the class weights it keeps"),
    "model.freeze_backbone_epochs": (Change.APPLIED, ""),  # read at each epoch's start
    "model.ema": (Change.FIXED, "the checkpoint's weights are an average, or the weights being trained"),
    "model.ema_decay": (Change.APPLIED, ""),  # how the average goes on from here
    "model.channels_last": (Change.APPLIED, ""),  # memory order only
    "model.compile": (Change.APPLIED, ""),
    "model.score_threshold": (Change.APPLIED, ""),  # detection: what evaluation keeps of the outputs
    "model.detections_per_image": (Change.APPLIED, ""),
    "model.predict_score_threshold": (Change.APPLIED, ""),
    "model.tta": (Change.APPLIED, ""),  # read by evaluation and prediction after training, never by a fit's steps
    "report": (Change.APPLIED, ""),
    "optim": (Change.APPLIED, ""),  # models.optimization.apply_settings puts them in the restored optimizer
    "optim.optimizer": (Change.FIXED, "the checkpoint's optimizer state is this optimizer's"),
    "optim.scheduler": (Change.FIXED, "the checkpoint's schedule state is this schedule's"),
    "trainer": (Change.APPLIED, ""),
    "trainer.fast_dev_run": (Change.FIXED, "a resumed fit continues a real fit"),
    "trainer.limit_train_batches": (Change.AT_EPOCH_END, "it decides how many batches an epoch has"),
    "trainer.accumulate_grad_batches": (Change.AT_EPOCH_END, "it decides which batches make an optimizer step"),
    "trainer.accelerator": (Change.AT_EPOCH_END, "it decides how many processes share an epoch"),
    "trainer.devices": (Change.AT_EPOCH_END, "it decides how many processes share an epoch"),
    "trainer.num_nodes": (Change.AT_EPOCH_END, "it decides how many processes share an epoch"),
    "trainer.strategy": (Change.AT_EPOCH_END, "it decides how many processes share an epoch"),
    "logger": (Change.APPLIED, ""),
    # The keys that say where the logger's run is: a resumed fit continues that run.
    **{f"logger.{key}": (Change.FIXED, why) for key, why in LoggerConfig.RUN_LOCATION.items()},
    "checkpoint": (Change.APPLIED, ""),
    "callbacks": (Change.APPLIED, ""),
    "callbacks.monitor": (Change.FIXED, "the best checkpoints and early stopping so far were judged by it"),
    "tune": (Change.APPLIED, ""),  # read by `tune` alone, which starts each trial as a new fit
}

SHAPING_SECTIONS = ("seed", "data", "model")
"""What a checkpoint's model and data are made of: a stored value of these must be valid here."""


def rule(key: str) -> tuple[Change, str]:
    """The policy for a dotted key: its own entry, else its section's."""
    section = key.split(".", 1)[0]
    return POLICY.get(key) or POLICY.get(section) or (Change.FIXED, "no resume policy names it")


def check_resume_changes(trained: Mapping[str, Any], config: Config, at_epoch_end: bool, checkpoint: str) -> None:
    """Refuse, naming the first such key, a config that changes what a resume must keep of
    `trained` (the checkpoint's config); `at_epoch_end`: the checkpoint was written at an epoch's end."""
    before = Config.from_data(trained).flat()
    for key, value in config.flat().items():
        if before.get(key) == value:
            continue
        change, why = rule(key)
        if change is Change.APPLIED or (change is Change.AT_EPOCH_END and at_epoch_end):
            continue
        old, new = json.dumps(before.get(key)), json.dumps(value)
        if change is Change.AT_EPOCH_END:
            raise ConfigError(
                f"{key}: a resume may change it only from a checkpoint written at an epoch's end, as {why}; "
                f"--resume {checkpoint} is in the middle of an epoch (got {new}; leave it {old})"
            )
        raise ConfigError(f"{key}: a resumed fit keeps the checkpoint's {old}, as {why} (got {new})")


def compatible_config(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's stored config without the values of non-shaping sections that this project's
    config refuses (they fall back to this project's defaults); a refused value of `seed`, `data`
    or `model` is a `ConfigError`: such a checkpoint belongs to another task or version."""
    data: dict[str, Any] = json.loads(json.dumps(stored))  # a deep copy, as JSON
    while True:
        try:
            Config.model_validate_json(json.dumps(data))
        except ValidationError as error:
            places = [tuple(map(str, detail["loc"][:2])) for detail in error.errors()]
            if not _leave_out(data, places):  # a shaping value, or nothing to leave out: not this project's
                raise ConfigError(describe_validation_error(error)) from None
            continue
        return data


def _leave_out(data: dict[str, Any], places: list[tuple[str, ...]]) -> bool:
    """Drop the refused `(section, key)` or `(key,)` places of `data`; False if one shapes the model
    or data, or if none was there to drop."""
    if any(not place or place[0] in SHAPING_SECTIONS for place in places):
        return False
    left = json.dumps(data)
    for section, *key in places:
        if key and isinstance(data.get(section), dict):
            data[section].pop(key[0], None)
        else:
            data.pop(section, None)
    return json.dumps(data) != left
