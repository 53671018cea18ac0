"""Test-time augmentation (`model.tta`): the views of an image that evaluation and prediction look
at, and what each view does to it. Torch alone, so that `inference.py` merges exactly as `validate`,
`test` and `predict` do; each task's `models/network.py` runs the views and merges their outputs.

The views are the image and its horizontal flip (`flip`), and both of them at two more scales
(`flip+scales`): 0.83 and 1.2 of the image's side, each rounded to a multiple of the stride the
task's network needs. They are about as far below as above the trained scale (0.83 is 1 / 1.2), close
enough to it that objects keep sizes the network learned, far enough to be looked at anew.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .config import TestTimeAugmentation

SCALES = (0.83, 1.2)
"""The scales `flip+scales` adds to the image's own."""


@dataclass(frozen=True)
class View:
    """One way of looking at an image: horizontally flipped or not, at `scale` of its side."""

    flipped: bool = False
    scale: float = 1.0

    def side(self, length: int, stride: int) -> int:
        """`length` pixels at this view's scale, a multiple of `stride` (at least one): what a network
        whose feature maps halve down to `stride` takes. The image's own scale keeps its length."""
        if self.scale == 1.0:
            return length
        return max(stride, round(length * self.scale / stride) * stride)

    def flip(self, images: Tensor) -> Tensor:
        """`images` (..., H, W) mirrored left to right if this view is flipped; flipping twice undoes it."""
        return images.flip(-1) if self.flipped else images

    def __str__(self) -> str:
        return ("flipped" if self.flipped else "image") + ("" if self.scale == 1.0 else f" x{self.scale:g}")


IMAGE = View()
"""The image itself: always the first view."""


def views(mode: TestTimeAugmentation) -> tuple[View, ...]:
    """The views `model.tta` looks at, the image itself first."""
    flips = (IMAGE, View(flipped=True))
    if mode == "none":
        return (IMAGE,)
    if mode == "flip":
        return flips
    return flips + tuple(View(flipped, scale) for scale in SCALES for flipped in (False, True))


def describe(mode: TestTimeAugmentation) -> str:
    """`model.tta` and its views in words, as the report and `export` say it."""
    if mode == "none":
        return "none (the image alone)"
    return f"{mode} ({len(views(mode))} views merged: {', '.join(map(str, views(mode)))})"
