"""Pictures of predictions, shared by the evaluation report's grid and `predict --visualize`: the
image as the model saw it, a colour per class, and a font for labels. Kept apart from the report,
whose figures need matplotlib's plotting, so that `predict` imports only what it draws with."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib import colormaps, font_manager
from torch import Tensor

Colour = tuple[int, int, int]
LABEL_FONT = "DejaVu Sans"
"""matplotlib's font, for labels drawn on pictures: torchvision's own is a bitmap font too small to
read on large ones."""
GAP = 4
"""White pixels between the panels of a picture (`side_by_side`)."""


def to_picture(image: Tensor, mean: Sequence[float] = (0.0,) * 3, std: Sequence[float] = (1.0,) * 3) -> Tensor:
    """A float image (normalised with `mean` and `std`, or in [0, 1]) as uint8 (3, H, W) on the CPU."""
    image = image.detach().float().cpu()
    image = image * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


def class_colours(count: int) -> list[Colour]:
    """A distinct colour per class (matplotlib's tab10, or tab20 for more), as RGB bytes."""
    colormap = colormaps["tab10" if count <= 10 else "tab20"]
    colours = []
    for index in range(count):
        red, green, blue, _ = colormap(index % colormap.N)
        colours.append((round(255 * red), round(255 * green), round(255 * blue)))
    return colours


def label_font() -> str:
    """The path of `LABEL_FONT`, as torchvision's drawing functions take it."""
    path: str = font_manager.findfont(LABEL_FONT)
    return path


def label_size(image: Tensor) -> int:
    """A font size readable on `image`: about 1/25 of its shorter side, at least 10 pixels."""
    return max(10, min(image.shape[-2:]) // 25)


def side_by_side(*pictures: Tensor) -> Tensor:
    """uint8 (3, H, W) pictures of one height, left to right, with a white gap between them."""
    gap = torch.full((3, pictures[0].shape[1], GAP), 255, dtype=torch.uint8)
    panels = [part for picture in pictures for part in (gap, picture)][1:]
    return torch.cat(panels, dim=2)
