"""Whether a checkpoint fits the configured model and data, checked here rather than met as a
traceback from inside Lightning: for a resumed fit, and for the commands that load a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoints import checkpoint_config
from .config import Config
from .errors import ConfigError
from .key_policy import check_resume_changes
from .models.optimization import GROUPS
from .task import DataModule, Model


def load_model(checkpoint: Path, config: Config) -> Model:
    """The checkpoint's weights in a model built from `config`, which has the checkpoint's config as its base."""
    try:
        return Model.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True, config=config)
    except RuntimeError:  # load_state_dict: the configured network differs from the checkpoint's
        raise _weights_do_not_fit("--checkpoint", checkpoint, config, checkpoint_config(checkpoint)) from None


def check_classes(datamodule: DataModule, model: Model) -> None:
    """A loaded model is evaluated or exported on data with the classes it was trained on."""
    if datamodule.class_info != model.class_info:
        raise ConfigError(f"data.root: classes {datamodule.class_info} differ from the checkpoint's {model.class_info}")


def check_resumable(
    path: Path, checkpoint: dict[str, Any], model: Model, datamodule: DataModule, config: Config
) -> None:
    """A resumed fit needs the checkpoint's classes, a network its weights fit, and changes only
    what `key_policy.POLICY` lets a resume change."""
    stored = checkpoint["hyper_parameters"]
    classes = {key: value for key, value in stored.items() if key != "config"}
    if classes != dict(datamodule.class_info):
        raise ConfigError(f"data.root: classes {dict(datamodule.class_info)} differ from the checkpoint's {classes}")
    shapes = {name: tuple(tensor.shape) for name, tensor in checkpoint.get("state_dict", {}).items()}
    if shapes != {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}:
        raise _weights_do_not_fit("--resume", path, config, stored["config"])
    groups = [len(optimizer["param_groups"]) for optimizer in checkpoint.get("optimizer_states", [])]
    schedules = checkpoint.get("lr_schedulers", [])
    if groups != [len(GROUPS)] or len(schedules) != 1 or "lr_lambdas" not in schedules[0]:
        raise ConfigError(
            f"--resume {path}: holds no optimizer and schedule this version can continue (an earlier version "
            f"wrote it?); start a new fit from its weights: --model.weights {path}"
        )
    # Lightning keeps the data module's `state_dict` under its class name: where training stood.
    position = checkpoint.get(type(datamodule).__qualname__) or {}
    check_resume_changes(
        _normalised_as(stored["config"], config), config, bool(position.get("epoch_done", True)), str(path)
    )


def _normalised_as(trained: dict[str, Any], config: Config) -> dict[str, Any]:
    """A checkpoint's config with the normalisation `config` resolved for its backbone where it has
    none: versions before `data.mean` / `data.std` normalised as that backbone's, ImageNet's."""
    data = trained.get("data", {})
    resolved = {key: data.get(key) or getattr(config.data, key) for key in ("mean", "std")}
    return {**trained, "data": {**data, **resolved}}


def _weights_do_not_fit(option: str, checkpoint: Path, config: Config, trained: dict[str, Any]) -> ConfigError:
    """The error for a configured network that the checkpoint's weights do not fit, naming the keys to leave."""
    configured = config.to_data()["model"]
    changed = [f"model.{key}" for key, value in configured.items() if trained["model"].get(key) != value]
    return ConfigError(
        f"{option} {checkpoint}: its weights do not fit the configured model; "
        f"leave {', '.join(changed) or 'model'} as the checkpoint has it"
    )
