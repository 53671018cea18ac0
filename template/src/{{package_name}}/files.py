"""File writes that readers never see half-done."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from torch import Tensor


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write beside `path`, then rename over it: an interrupted run leaves the old file or none."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    if isinstance(content, str):
        partial.write_text(content, encoding="utf-8")
    else:
        partial.write_bytes(content)
    os.replace(partial, path)


def png_bytes(picture: Tensor) -> bytes:
    """A uint8 picture, RGB of shape (3, H, W) or one channel of shape (H, W), encoded as PNG."""
    pixels = picture.detach().cpu()
    encoded = io.BytesIO()
    Image.fromarray((pixels.permute(1, 2, 0) if pixels.dim() == 3 else pixels).numpy()).save(encoded, format="PNG")
    return encoded.getvalue()


def write_png(path: Path, picture: Tensor) -> None:
    """`png_bytes(picture)`, written atomically."""
    write_atomic(path, png_bytes(picture))
