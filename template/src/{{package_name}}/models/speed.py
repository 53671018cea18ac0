"""What makes a network faster without changing what it computes or what its checkpoints hold:
the memory order of its weights and `torch.compile`, shared by every model."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig


def speed_up(network: nn.Module, config: ModelConfig, compiled_part: nn.Module | None = None) -> None:
    """Put convolution weights in channels-last order (`model.channels_last`) and compile
    `compiled_part`, by default the whole network (`model.compile`), both in place.

    `nn.Module.compile` keeps the parameter names, unlike wrapping in `torch.compile(network)`, so
    checkpoints of compiled and plain runs load into each other. Compilation happens at the first
    call; a batch of another size (the last, smaller one of an epoch) compiles once more with a
    dynamic batch size, and evaluation mode has a graph of its own.
    """
    if config.channels_last:
        network.to(memory_format=torch.channels_last)
    if config.compile:
        (compiled_part or network).compile()
