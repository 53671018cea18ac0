"""Backbones by name, the one place that knows both libraries: torchvision's classification models
(`resnet18`) and any timm model as `timm/<name>` (`timm/convnext_nano`, with a pretrained tag:
`timm/resnet18.a1_in1k`). Names are checked here with a suggestion from the library's own list, and
the normalisation a backbone's published weights expect comes from here. Torch, torchvision and
timm only; timm is imported where a timm name is looked at (about 0.7 s, and it imports W&B where
that is installed), so a torchvision backbone never waits for it."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torchvision
from torch import nn

from ..config import IMAGENET_MEAN, IMAGENET_STD, Config
from ..errors import ConfigError

if TYPE_CHECKING:
    from timm.models import PretrainedCfg

TIMM_PREFIX = "timm/"
"""How a timm model is named in `model.backbone`, as the Hugging Face hub names timm's weights."""


def is_timm(backbone: str) -> bool:
    return backbone.startswith(TIMM_PREFIX)


def timm_name(backbone: str) -> str:
    """The name timm knows a `timm/<name>` backbone by."""
    return backbone.removeprefix(TIMM_PREFIX)


def torchvision_classifiers() -> list[str]:
    """torchvision's classification models: the backbones it offers."""
    names: list[str] = torchvision.models.list_models(module=torchvision.models)
    return names


def backbone_named_in(network: str) -> str:
    """The torchvision classifier a torchvision network is built on, as its name says
    (`fasterrcnn_mobilenet_v3_large_fpn`: mobilenet_v3_large)."""
    return max((name for name in torchvision_classifiers() if name in network), key=len)


def check_backbone(backbone: str) -> None:
    """A `ConfigError` naming `model.backbone` for a name neither library has, with the closest one it has."""
    if not is_timm(backbone) and backbone in torchvision_classifiers():
        return
    import timm

    if is_timm(backbone):
        if not timm.is_model(timm_name(backbone)):
            suggestion = _closest(timm_name(backbone).split(".")[0], timm.list_models(), TIMM_PREFIX)
            raise ConfigError(f"model.backbone: timm has no model {timm_name(backbone)!r}{suggestion}")
        return
    if timm.is_model(backbone):
        suggestion = f" (did you mean {TIMM_PREFIX}{backbone}? timm's models are named timm/<name>)"
    else:
        suggestion = _closest(backbone, torchvision_classifiers(), "")
    raise ConfigError(f"model.backbone: torchvision has no classification model {backbone!r}{suggestion}")


def _closest(name: str, known: Sequence[str], prefix: str) -> str:
    found = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {prefix}{found[0]}?)" if found else ""


def classifier(backbone: str, num_classes: int) -> nn.Module:
    """The backbone as a classifier with a `num_classes`-way head, randomly initialised (published
    or local weights come later, through `models.weights`, and only for a new fit)."""
    check_backbone(backbone)
    network: nn.Module
    if is_timm(backbone):
        import timm

        network = timm.create_model(timm_name(backbone), pretrained=False, num_classes=num_classes)
    else:
        network = torchvision.models.get_model(backbone, weights=None, num_classes=num_classes)
    return network


def pretrained_config(backbone: str) -> PretrainedCfg | None:
    """timm's `pretrained_cfg` of a `timm/<name>` backbone (its default tag's, unless the name has
    one); None for torchvision's and for names timm does not know."""
    if not is_timm(backbone):
        return None
    import timm

    found: PretrainedCfg | None = timm.models.get_pretrained_cfg(timm_name(backbone))
    return found


def published_normalization(backbone: str) -> tuple[list[float], list[float]]:
    """The mean and standard deviation (per RGB channel, of pixels in [0, 1]) that the backbone's
    published weights expect: timm's `pretrained_cfg` for timm models, ImageNet's for torchvision's."""
    pretrained = pretrained_config(backbone)
    if pretrained is not None and len(pretrained.mean or ()) == len(pretrained.std or ()) == 3:
        return [float(v) for v in pretrained.mean], [float(v) for v in pretrained.std]
    return list(IMAGENET_MEAN), list(IMAGENET_STD)


def normalized(config: Config, backbone: str) -> Config:
    """`config` with `data.mean` and `data.std` that are unset filled in from `backbone`, so that the
    checkpoints and `config.yaml` of a fit keep the numbers it trained with, for predict,
    `inference.py` and export alike."""
    mean, std = published_normalization(backbone)
    given = {"mean": config.data.mean or mean, "std": config.data.std or std}
    return config.model_copy(update={"data": config.data.model_copy(update=given)})
