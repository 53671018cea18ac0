"""What every task's `inference.py` shares: a checkpoint of this project read with torch alone
(its config and class info, the network rebuilt and its weights loaded), and prediction over
images of any size in batches of `data.batch_size`, as the `predict` command batches files."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from PIL import Image
from torch import Tensor, nn

from .checkpoints import network_weights, read_checkpoint
from .config import Config, TestTimeAugmentation
from .data.images import as_rgb, read_rgb
from .models import exportable
from .models.speed import speed_up
from .tta import views

PredictionT = TypeVar("PredictionT")


class TrainedModel(abc.ABC, Generic[PredictionT]):
    """A trained network in eval mode, with the config it was trained with and its class names;
    predictions merge the views of its `model.tta`."""

    def __init__(self, network: nn.Module, config: Config, class_names: Sequence[str]) -> None:
        self.network = network.eval()
        self.config = config
        self.class_names = list(class_names)
        self.views = views(config.model.tta)

    @property
    def device(self) -> torch.device:
        """Where the network computes; an exported file runs on the CPU (and has no parameters)."""
        parameter = next(self.network.parameters(), None)
        return torch.device("cpu") if parameter is None else parameter.device

    @torch.inference_mode()
    def predict(self, images: Sequence[Image.Image | Tensor]) -> list[PredictionT]:
        """The prediction for each image of any size, a PIL image or a uint8 RGB tensor (3, H, W), in
        batches of `data.batch_size`. Tensors are resized as PIL images too, as `predict` reads files,
        so that both give the same numbers."""
        size = self.config.data.batch_size
        predictions: list[PredictionT] = []
        for start in range(0, len(images), size):
            predictions += self.predict_batch([as_rgb(image) for image in images[start : start + size]])
        return predictions

    def predict_files(self, paths: Sequence[Path | str]) -> list[PredictionT]:
        """The prediction for each image file, read as `predict` reads it."""
        return self.predict([read_rgb(path) for path in paths])

    @abc.abstractmethod
    def predict_batch(self, pictures: list[Image.Image]) -> list[PredictionT]:
        """One batch of RGB pictures, each at its own size."""


def load_network(
    path: Path | str,
    device: torch.device | str,
    build: Callable[[Config, Mapping[str, Any]], nn.Module],
    tta: TestTimeAugmentation | None = None,
) -> tuple[nn.Module, Config, dict[str, Any]]:
    """The network of a checkpoint of this project on `device`, made by `build` from the stored config
    and class info, with its weights (never `model.weights` or `model.pretrained`: those start a new
    fit only); or the file `export` wrote (`.onnx`, `.pt2`) in the network's place, run on the CPU.
    Also the stored config (compiling off, `model.tta` replaced by `tta` if given) and class info.
    A path that is neither is a `ConfigError` naming it."""
    path = Path(path)
    if path.suffix in (".onnx", ".pt2"):
        from .export import open_exported

        run, stored = open_exported(path)
        config = _served_config(stored["config"], tta)
        return exportable.ExportedNetwork(run), config, stored
    checkpoint = read_checkpoint(path)
    stored = checkpoint["hyper_parameters"]
    config = _served_config(stored["config"], tta)
    network = build(config, stored)
    speed_up(network, config.model)
    network.load_state_dict(network_weights(checkpoint))
    return network.to(device), config, stored


def _served_config(stored: Mapping[str, Any], tta: TestTimeAugmentation | None) -> Config:
    config = Config.from_data(stored)
    model = config.model.model_copy(update={"compile": False, "tta": tta or config.model.tta})
    return config.model_copy(update={"model": model})
