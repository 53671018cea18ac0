"""Image files: reading any picture as RGB, finding the ones that do not decode, and the folders
of pictures `predict` reads, in a stable order."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms.v2.functional import pil_to_tensor, to_pil_image

from ..errors import ConfigError

IMAGE_SUFFIXES = frozenset(IMG_EXTENSIONS)
"""The image suffixes torchvision's data sets read, so training and predict accept the same files."""

T = TypeVar("T")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


@dataclass(frozen=True)
class ImageScan:
    """What `scan_images` found below `folder`."""

    folder: Path
    files: list[Path]
    """Every picture once, sorted, by the path it was first reached by (a real one before a link)."""
    unreadable: dict[Path, str]
    """Entries that cannot be read as images, with why: broken links, folders named like images."""


def scan_images(folder: Path, recursive: bool = True) -> ImageScan:
    """The images below `folder`: the one listing that `check`, `fit` and `predict` all use, so that
    they see the same files.

    Linked folders are followed, each once: a folder already walked (by its resolved path) or
    one that holds `folder` itself (a link loop) is skipped, and a file reached by several paths
    counts once. The real tree is walked before any link out of it, so the names kept are the
    real ones where there are both.
    """
    found: dict[Path, Path] = {}
    unreadable: dict[Path, str] = {}
    start = folder.resolve()
    walked: set[Path] = set()
    links = [folder]
    while links:
        for here, folders, names in os.walk(links.pop(0)):
            directory = Path(here)
            resolved = directory.resolve()
            if resolved in walked or (directory != folder and start.is_relative_to(resolved)):
                folders.clear()
                continue
            walked.add(resolved)
            folders.sort()
            for name in folders:
                path = directory / name
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    unreadable[path] = "it is a folder, not an image file"
                if recursive and path.is_symlink():
                    links.append(path)  # os.walk lists a linked folder without entering it
            if not recursive:
                folders.clear()
            for name in names:
                path = directory / name
                if not path.exists():  # only a link names nothing
                    unreadable[path] = f"it is a broken symbolic link (to {os.readlink(path)})"
                elif path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                    target = path.resolve()
                    if target not in found or (found[target].is_symlink() and not path.is_symlink()):
                        found[target] = path
    return ImageScan(folder, sorted(found.values()), dict(sorted(unreadable.items())))


def list_images(folder: Path) -> list[Path]:
    """Every image below `folder` (`scan_images`), sorted; a missing or empty folder, a broken link
    or a broken file is a `ConfigError`."""
    if not folder.is_dir():
        raise ConfigError(f"--input {folder}: not a directory")
    scan = scan_images(folder)
    for path, problem in scan.unreadable.items():
        raise ConfigError(f"--input {path}: not a readable image ({problem})")
    if not scan.files:
        raise ConfigError(f"--input {folder}: no images found ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for path in scan.files:
        read_image_size(path, option="--input")
    return scan.files


def read_image_size(path: Path, option: str) -> tuple[int, int]:
    """(width, height) from the file's header: fails fast on a broken file, before any model work."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, Image.DecompressionBombError) as error:
        raise ConfigError(f"{option} {path}: not a readable image ({error})") from None


def read_rgb(path: Path | str | BinaryIO) -> Image.Image:
    """A file (or its bytes, as `serve` receives them) decoded as 8-bit RGB, whatever it stores:
    grayscale is repeated over the three channels, palette colours are looked up, alpha is dropped,
    and 16-bit images keep their top 8 bits (PIL's own conversion would clip them to white)."""
    with Image.open(path) as image:
        if image.mode in WIDE_MODES:
            wide = np.asarray(image, dtype=np.int64)
            return Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8)).convert("RGB")
        return image.convert("RGB")


def as_rgb(image: Image.Image | Tensor) -> Image.Image:
    """A PIL image in RGB, as files are decoded for the model: a uint8 tensor (3, H, W) is turned into
    one, so that it is resized by PIL exactly as a file would be."""
    return to_pil_image(image) if isinstance(image, Tensor) else image.convert("RGB")


def read_picture(path: Path) -> Tensor:
    """The image as uint8 RGB of shape (3, H, W), for drawing predictions on."""
    picture: Tensor = pil_to_tensor(read_rgb(path))
    return picture


WIDE_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
"""PIL's modes of 16-bit (and 32-bit integer) grayscale images."""


def decode_problem(path: Path) -> str | None:
    """Why the file does not decode to a whole image (truncated, corrupt, not an image), or None.

    JPEGs are decoded at an eighth of their size (`draft`), which reads every byte of the file
    like a full decode, at a fraction of the cost.
    """
    try:
        with Image.open(path) as image:
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


def find_undecodable(paths: Iterable[Path]) -> dict[Path, str]:
    """Every file among `paths` that does not decode, with the reason; decoded on a few threads
    (Pillow releases the GIL while it decodes)."""
    files = list(paths)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = pool.map(decode_problem, files)
    return {path: problem for path, problem in zip(files, problems, strict=True) if problem is not None}


def file_digest(path: Path) -> str:
    """The file's SHA-256: equal digests are the same picture, whatever the file names."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


class ImageFiles(Dataset[T]):
    """Decoded RGB images, transformed for the model; the order matches `files`."""

    def __init__(self, files: list[Path], transform: Callable[[Image.Image], T]) -> None:
        self.files = files
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> T:
        return self.transform(read_rgb(self.files[index]))
