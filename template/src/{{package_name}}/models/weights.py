"""A new fit's first weights: `model.weights` (a local file) or `model.pretrained` (the published
weights, found only in the libraries' own caches: nothing is ever downloaded). A file's tensors
are matched to the network under the key prefixes that fit the most tensors, so a torchvision or
timm state dict, a `.safetensors` file or a checkpoint of this project of any task initialises any
network with the same backbone. Never called on resume or when a checkpoint is rebuilt."""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
import torchvision
from torch import Tensor, nn

from ..errors import ConfigError, first_line
from .backbones import check_backbone, is_timm, pretrained_config

log = logging.getLogger(__name__)

SAFETENSORS_FILE = "model.safetensors"
"""The file of a timm model's weights in its Hugging Face repository."""
MAX_PREFIX_DEPTH = 4
"""How many leading key parts a file's wrapper may have (`network.backbone.body.model.`)."""


@dataclass(frozen=True)
class Loaded:
    """What `load_matching` did: tensors loaded, the file's tensors left out, the network's missing."""

    loaded: int
    left_out: int
    missing: int


def initialise(network: nn.Module, weights: Path | None, pretrained: bool, backbone: str) -> Loaded | None:
    """Load `weights` (a file), or with `pretrained` the backbone's published weights from the cache,
    into `network`; None when neither is asked for. Every problem is a one-line `ConfigError`."""
    if weights is not None and pretrained:
        raise ConfigError("model.weights: give model.weights or model.pretrained: true, not both")
    if weights is not None:
        return load_matching(network, read_weights(weights, "model.weights"), f"model.weights: {weights}")
    if pretrained:
        path = cached_weights(backbone)
        return load_matching(network, read_weights(path, "model.pretrained"), f"model.pretrained: {path}")
    return None


def cached_weights(backbone: str) -> Path:
    """The file of `backbone`'s published weights in its library's cache: torch hub's
    (`$TORCH_HOME/hub/checkpoints/`) for torchvision, Hugging Face's for timm; a `ConfigError`
    naming where it was looked for when it is not there."""
    check_backbone(backbone)
    if is_timm(backbone):
        import huggingface_hub

        config = pretrained_config(backbone)
        repository = config.hf_hub_id if config is not None else None
        if not repository:
            raise ConfigError(f"model.pretrained: timm has no published weights for {backbone}; use model.weights")
        repository = repository.split("@")[0]
        found = huggingface_hub.try_to_load_from_cache(repository, SAFETENSORS_FILE)
        if isinstance(found, str):
            return Path(found)
        cache = huggingface_hub.constants.HF_HUB_CACHE
        raise ConfigError(
            f"model.pretrained: {SAFETENSORS_FILE} of {repository} is not in the Hugging Face cache {cache} "
            "(nothing is downloaded); put it there or give the file as model.weights"
        )
    url: str = torchvision.models.get_model_weights(backbone).DEFAULT.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    if not path.is_file():
        raise ConfigError(
            f"model.pretrained: {path} is not in torch hub's cache (nothing is downloaded; it is {url}); "
            "put it there or give the file as model.weights"
        )
    return path


def read_weights(path: Path, option: str) -> dict[str, Tensor]:
    """The tensors of a state dict, a `.safetensors` file or a checkpoint (a Lightning one's
    `state_dict`), read without unpickling code; a `ConfigError` for an absent or unreadable file."""
    if not path.is_file():
        raise ConfigError(f"{option}: {path}: file not found")
    try:
        if path.suffix == ".safetensors":
            return dict(safetensors.torch.load_file(path))
        content: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise ConfigError(f"{option}: {path}: not a weights file ({first_line(error)})") from None
    for wrapper in ("state_dict", "model"):  # Lightning's and many training scripts' checkpoints
        if isinstance(content, Mapping) and isinstance(content.get(wrapper), Mapping):
            content = content[wrapper]
    tensors = {str(k): v for k, v in content.items() if isinstance(v, Tensor)} if isinstance(content, Mapping) else {}
    if not tensors:
        raise ConfigError(f"{option}: {path}: holds no tensors")
    return tensors


def load_matching(network: nn.Module, tensors: Mapping[str, Tensor], source: str) -> Loaded:
    """Copy into `network` the tensors of `tensors` that fit it under the best prefix pair, logging
    each one left out and a summary; a `ConfigError` when none fits."""
    own = network.state_dict()
    old, new = best_prefixes(tensors, own)
    fitting: dict[str, Tensor] = {}
    left_out = 0
    for key, tensor in tensors.items():
        target = new + key.removeprefix(old) if key.startswith(old) else None
        if target is not None and target in own and own[target].shape == tensor.shape:
            fitting[target] = tensor
            continue
        left_out += 1
        why = "no such tensor in the network" if target is None or target not in own else "another shape"
        log.warning("%s: left out %s %s (%s)", source, key, tuple(tensor.shape), why)
    if not any(tensor.dim() > 1 for tensor in fitting.values()):  # normalisation vectors alone fit by chance
        raise ConfigError(
            f"{source}: none of its {len(tensors)} tensors fits this network (no kernel or weight matrix does; "
            "another architecture?)"
        )
    network.load_state_dict(fitting, strict=False)
    done = Loaded(loaded=len(fitting), left_out=left_out, missing=len(own) - len(fitting))
    log.warning("%s: loaded %d, left out %d, missing %d", source, done.loaded, done.left_out, done.missing)
    return done


def best_prefixes(tensors: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> tuple[str, str]:
    """The (file prefix, network prefix) pair under which the most kernels and weight matrices have a
    same-shaped namesake (vectors, such as a normalisation's, line up by chance); the shortest such
    pair on a tie."""
    by_rest: dict[str, list[str]] = {}
    for key in own:
        for prefix, rest in _splits(key, depth=key.count(".")):
            by_rest.setdefault(rest, []).append(prefix)
    counts: Counter[tuple[str, str]] = Counter()
    for key, tensor in tensors.items():
        if tensor.dim() < 2:
            continue
        for old, rest in _splits(key, depth=MAX_PREFIX_DEPTH):
            for new in by_rest.get(rest, []):
                if own[new + rest].shape == tensor.shape:
                    counts[old, new] += 1
    if not counts:
        return "", ""
    return max(counts, key=lambda pair: (counts[pair], -len(pair[0]) - len(pair[1])))


def _splits(key: str, depth: int) -> list[tuple[str, str]]:
    """`key` cut after each of its first `depth` parts, keeping at least two parts (`conv1.weight`)
    after the cut, or the whole key."""
    parts = key.split(".")
    cuts = range(max(0, min(depth, len(parts) - 2)) + 1)
    return [(".".join(parts[:cut]) + "." if cut else "", ".".join(parts[cut:])) for cut in cuts]
