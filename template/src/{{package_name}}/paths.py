"""The paths a command is given, checked before any work: a file it reads must be a file, a folder it
writes in must be one it can write in, and `predict` must not write among the images it reads.
Otherwise a mistake in a path surfaces only once the work is done, when its results are written."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .errors import ConfigError


def existing_file(path: Path, option: str) -> None:
    """A file to read: a folder or a missing path is a `ConfigError` naming `option`."""
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder, not a file")
    if not path.exists():
        raise ConfigError(f"{option} {path}: file not found")


def writable_folder(folder: Path, option: str) -> None:
    """A folder to write in, made if missing: it, or the nearest of its parents that exists, must be
    a folder this process can create files in. A probe file tells, as the permission bits do not
    for root, nor for a file system mounted read-only; it is gone once closed, so nothing is left."""
    absolute = folder.absolute()
    existing = next(path for path in (absolute, *absolute.parents) if path.exists() or path.is_symlink())
    if not existing.is_dir():
        what = "a broken symbolic link" if not existing.exists() else "a file"
        raise ConfigError(f"{option}: {existing} is {what}, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(f"{option}: cannot write in {existing} ({error.strerror or error})") from None


def outside(output: Path, input_dir: Path) -> None:
    """`predict --output` must not lie in `--input`: the next `predict` there would read its own
    pictures (masks, drawn images) as input, and a mask could be written over an input image."""
    if output.resolve().is_relative_to(input_dir.resolve()):
        raise ConfigError(
            f"--output {output}: inside --input {input_dir}, whose images the next predict would read; "
            "write predictions elsewhere"
        )
