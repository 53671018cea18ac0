"""File writes that readers never see half-done."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write beside `path`, then rename over it: an interrupted run leaves the old file or none."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    if isinstance(content, str):
        partial.write_text(content, encoding="utf-8")
    else:
        partial.write_bytes(content)
    os.replace(partial, path)
