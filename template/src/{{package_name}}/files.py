"""File writes that readers never see half-done."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from .errors import WriteError

if TYPE_CHECKING:
    from torch import Tensor

PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.partial$")
"""A partial file's name: `.<destination's name>.<writing process id>.partial`."""


def write_atomic(path: Path, content: str | bytes | memoryview, what: str | None = None) -> None:
    """Write `content` to `path` so that a kill at any moment leaves the previous file or none
    under that name: into a hidden partial file in `path`'s own folder (the same file system, so the
    rename is atomic, never a copy), flushed to the disk (fsync), then renamed over `path`. A failed
    write removes its partial file and raises `WriteError`, naming `path` and `what` it was to hold
    (its role, as "the checkpoint"). Every file the project writes goes through here."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    partial = partial_path(path)
    try:
        with partial.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise write_error(path, error, what) from None
        raise
    sync_folder(path.parent)


def partial_path(path: Path) -> Path:
    """Where `write_atomic` writes `path` before it is complete: hidden, in `path`'s own folder."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def write_error(path: Path, error: OSError, what: str | None = None) -> WriteError:
    """The one-line error for `path` that could not be written: `<path>: cannot write <what>: <reason>`."""
    role = what or f"this {path.suffix.lstrip('.').upper() or 'data'} file"
    reason = error.strerror or type(error).__name__
    return WriteError(f"{path}: cannot write {role}: {reason}")


def remove_stale_partials(folder: Path) -> None:
    """Remove the partial files in `folder` that a killed process left: those whose writer no
    longer runs. A write that stopped half-way never reaches its final name; this frees its space."""
    for path in folder.glob(".*.partial"):
        match = PARTIAL.match(path.name)
        if match and not process_running(int(match.group("pid"))):
            path.unlink(missing_ok=True)


def process_running(pid: int) -> bool:
    """Whether a process with this id runs on this machine (this one's own included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True


def sync_folder(folder: Path) -> None:
    """Make the rename itself durable: a crash right after it keeps the new file, not the old one.
    Only where folders can be opened (not on Windows, where the rename is durable by itself)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def png_bytes(picture: Tensor) -> bytes:
    """A uint8 picture, RGB of shape (3, H, W) or one channel of shape (H, W), encoded as PNG."""
    pixels = picture.detach().cpu()
    encoded = io.BytesIO()
    Image.fromarray((pixels.permute(1, 2, 0) if pixels.dim() == 3 else pixels).numpy()).save(encoded, format="PNG")
    return encoded.getvalue()


def write_png(path: Path, picture: Tensor) -> None:
    """`png_bytes(picture)`, written atomically."""
    write_atomic(path, png_bytes(picture), "the picture")
