"""Seeded drawing of coloured geometric shapes on noisy backgrounds: the built-in data set.

Every sample is a pure function of (seed, split, index), so data sets need no storage, no
download, and are identical across runs, machines and data-loader workers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypeVar

import torch
from torch import Tensor
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from torchvision.transforms import v2

SampleT = TypeVar("SampleT")

SHAPE_NAMES = ("circle", "square", "triangle", "cross")
SPLIT_OFFSETS = {"train": 0, "val": 1, "test": 2}


def sample_generator(seed: int, split: str, index: int) -> torch.Generator:
    """A generator private to one sample, so samples can be drawn in any order."""
    generator = torch.Generator()
    generator.manual_seed((seed * 3 + SPLIT_OFFSETS[split]) * 1_000_003 + index)
    return generator


def noisy_background(size: int, generator: torch.Generator) -> Tensor:
    """A random base colour with a linear gradient and per-pixel noise, as float RGB in [0, 255]."""
    base = torch.rand(3, 1, 1, generator=generator) * 255
    ramp = torch.linspace(-1.0, 1.0, size)
    direction = torch.rand(2, generator=generator) * 2 - 1
    gradient = direction[0] * ramp.view(1, -1) + direction[1] * ramp.view(-1, 1)
    noise = torch.randn(3, size, size, generator=generator) * 12
    return base + 30 * gradient + noise


def contrasting_colour(background: Tensor, generator: torch.Generator) -> Tensor:
    """A colour clearly different from the background's mean, so every shape stays visible."""
    mean = background.mean(dim=(1, 2))
    colour = torch.rand(3, generator=generator) * 255
    for _ in range(16):
        if (colour - mean).abs().sum() > 160:
            break
        colour = torch.rand(3, generator=generator) * 255
    else:
        colour = 255 - mean
    return colour


def shape_mask(
    label: int, size: int, generator: torch.Generator, radius_range: tuple[float, float] = (0.25, 0.40)
) -> Tensor:
    """Boolean mask of one randomly placed, sized and rotated shape of class `label`.

    The radius is drawn from `radius_range`, as fractions of the image size; the whole shape
    always lies inside the image.
    """
    low, high = radius_range
    radius = size * (low + (high - low) * torch.rand(1, generator=generator).item())
    margin = radius * 1.05
    cx, cy = (margin + (size - 2 * margin) * torch.rand(2, generator=generator)).tolist()
    angle = 2 * math.pi * torch.rand(1, generator=generator).item()
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    # Coordinates in the shape's own rotated frame, centred on the shape.
    u = (xs - cx) * math.cos(angle) + (ys - cy) * math.sin(angle)
    v = -(xs - cx) * math.sin(angle) + (ys - cy) * math.cos(angle)
    name = SHAPE_NAMES[label]
    mask: Tensor
    if name == "circle":
        mask = u**2 + v**2 <= radius**2
    elif name == "square":
        half = radius * 0.8
        mask = (u.abs() <= half) & (v.abs() <= half)
    elif name == "triangle":
        # Equilateral: inside all three edges' half-planes (inradius = radius / 2).
        mask = torch.ones_like(u, dtype=torch.bool)
        for k in range(3):
            normal = math.pi / 2 + k * 2 * math.pi / 3
            mask &= u * math.cos(normal) + v * math.sin(normal) >= -radius / 2
    elif name == "cross":
        arm = radius / 3
        mask = ((u.abs() <= radius) & (v.abs() <= arm)) | ((u.abs() <= arm) & (v.abs() <= radius))
    else:
        raise ValueError(f"unknown shape label {label}")
    return mask


def paint(canvas: Tensor, mask: Tensor, colour: Tensor) -> None:
    """Fill `mask` on a float RGB canvas with `colour`, in place."""
    canvas[:, mask] = colour.view(3, 1)


def to_uint8(canvas: Tensor) -> Tensor:
    return canvas.clamp(0, 255).round().to(torch.uint8)


class SyntheticDataset(Dataset[SampleT]):
    """The built-in data of a task: `size` samples of `split`, each drawn from (seed, split, index)
    alone by the task's `__getitem__`, then transformed by `transform` (None: as drawn)."""

    def __init__(self, size: int, image_size: int, seed: int, split: str, transform: v2.Compose | None) -> None:
        self.size = size
        self.image_size = image_size
        self.seed = seed
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return self.size

    def check_index(self, index: int) -> None:
        """Refuse an index past the data set, as a sequence does: drawing would make up a sample."""
        if not 0 <= index < self.size:
            raise IndexError(index)
