"""Which of a network's parameters are its backbone, and freezing them: what `optim.backbone_lr_scale`
and `model.freeze_backbone_epochs` act on, in every task.

The backbone is found the way `models.weights` loads a classifier's weights: the tensors a classifier
of `model.backbone` has outside its head (those whose shape does not depend on the class count),
under the key prefixes that fit the network best. So it is, in each task and architecture, exactly
what published weights or a classification checkpoint initialise; the rest (a head, a neck, FCOS's
towers) is new. Torch, torchvision and timm only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from .backbones import classifier
from .weights import best_prefixes

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
"""The normalisation layers that keep running statistics, which a frozen backbone keeps too."""


def backbone_parameter_names(network: nn.Module, backbone: str) -> set[str]:
    """The names (in `network`) of the parameters that `backbone`'s classifier has outside its head."""
    body = _classifier_body(backbone)
    own = dict(network.named_parameters())
    old, new = best_prefixes(body, own)
    names = set()
    for key, tensor in body.items():
        target = new + key.removeprefix(old)
        if key.startswith(old) and target in own and own[target].shape == tensor.shape:
            names.add(target)
    return names


def _classifier_body(backbone: str) -> dict[str, Tensor]:
    """`backbone`'s classifier parameters whose shapes are the same for two classes as for three."""
    two, three = (dict(_classifier(backbone, classes).named_parameters()) for classes in (2, 3))
    return {name: tensor for name, tensor in two.items() if name in three and three[name].shape == tensor.shape}


def _classifier(backbone: str, classes: int) -> nn.Module:
    try:  # on the meta device (shapes, no memory), unless its builder computes with tensors (RegNet)
        with torch.device("meta"):
            return classifier(backbone, classes)
    except NotImplementedError:
        return classifier(backbone, classes)


def split_parameters(network: nn.Module, backbone: set[str]) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """`network`'s parameters in the backbone (named in `backbone`), and the others."""
    inside: list[nn.Parameter] = []
    outside: list[nn.Parameter] = []
    for name, parameter in network.named_parameters():
        (inside if name in backbone else outside).append(parameter)
    return inside, outside


def backbone_norms(network: nn.Module, backbone: set[str]) -> list[nn.Module]:
    """The backbone's BatchNorm layers, whose running statistics freeze with its weights."""
    return [
        module for name, module in network.named_modules() if isinstance(module, NORMS) and f"{name}.weight" in backbone
    ]


def freeze(parameters: Iterable[nn.Parameter], norms: Sequence[nn.Module], frozen: bool) -> None:
    """Stop (or restart) training `parameters` and the running statistics of `norms`; called in
    training mode, at an epoch's start."""
    for parameter in parameters:
        parameter.requires_grad_(not frozen)
    for module in norms:
        module.train(not frozen)
