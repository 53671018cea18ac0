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


def write_png(path: Path, picture: Tensor) -> None:
    """A uint8 picture of shape (3, H, W) as a PNG file, written atomically."""
    encoded = io.BytesIO()
    Image.fromarray(picture.detach().cpu().permute(1, 2, 0).numpy()).save(encoded, format="PNG")
    write_atomic(path, encoded.getvalue())
