"""Reading this project's checkpoints with torch alone: for the commands, and for `inference.py`,
which serves a model without Lightning."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .errors import ConfigError, first_line
from .key_policy import compatible_config

ZIP_MAGIC = b"PK\x03\x04"
"""How every file `torch.save` writes begins (a zip archive)."""
NETWORK_PREFIX = "network."
"""Where the LightningModule keeps the network: its weights' names in a checkpoint start so."""


def read_checkpoint(path: Path, option: str = "--checkpoint") -> dict[str, Any]:
    """A checkpoint of this project, read without unpickling any code (`weights_only=True`), its
    stored config made this project's (`key_policy.compatible_config`: another logger's section,
    say, is left out)."""
    if not path.is_file():
        raise ConfigError(f"{option} {path}: file not found")
    try:
        checkpoint: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        config = checkpoint["hyper_parameters"]["config"]
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError) as error:
        if torn(path):
            raise ConfigError(f"{option} {path}: torn or truncated checkpoint ({first_line(error)})") from None
        raise ConfigError(f"{option} {path}: not a checkpoint of this project ({first_line(error)})") from None
    try:
        checkpoint["hyper_parameters"]["config"] = compatible_config(config)
    except ConfigError as error:
        raise ConfigError(f"{option} {path}: written by another task or an incompatible version ({error})") from None
    return checkpoint


def torn(path: Path) -> bool:
    """Whether `path` is a checkpoint cut short (a write that stopped half-way, a copy killed
    midway): empty, or a zip archive as `torch.save` begins one that does not read to its end."""
    try:
        with path.open("rb") as file:
            start = file.read(len(ZIP_MAGIC))
    except OSError:  # unreadable, not torn: the load's own error says why
        return False
    if start != ZIP_MAGIC:
        return not start
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is not None  # the first member whose checksum fails, if any
    except (OSError, zipfile.BadZipFile, EOFError):
        return True


def checkpoint_config(path: Path, option: str = "--checkpoint") -> dict[str, Any]:
    """The config stored in a checkpoint."""
    config: dict[str, Any] = read_checkpoint(path, option)["hyper_parameters"]["config"]
    return config


def network_weights(checkpoint: dict[str, Any]) -> dict[str, Tensor]:
    """The network's own state dict out of a checkpoint's (the LightningModule's)."""
    return {
        name.removeprefix(NETWORK_PREFIX): value
        for name, value in checkpoint["state_dict"].items()
        if name.startswith(NETWORK_PREFIX)
    }


def logged_steps(checkpoint: dict[str, Any]) -> int:
    """The logger step a resumed fit takes over at: what the run logged after its checkpoint was
    written is dropped where the logger allows it, as the resumed fit logs it again."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"]) + 1
    except (KeyError, TypeError):
        return int(checkpoint.get("global_step", 0))
