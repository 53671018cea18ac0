"""The base of each task's `predict` writer (`predictions.py`): which file each prediction belongs
to, and where `--visualize` puts the pictures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from .files import write_png

ANNOTATED = "annotated"
"""The folder below `predict --output` that `--visualize` writes its pictures to."""


class ImageFilesWriter(BasePredictionWriter):
    """Base of the task's `PredictionWriter`: predictions for `files`, written below `output_dir`,
    and with `visualize` each image with its prediction drawn on it, in `output_dir/annotated/`.

    Lightning passes the dataset indices of each batch, which map predictions back to their files.
    """

    def __init__(self, input_dir: Path, files: Sequence[Path], output_dir: Path, visualize: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.input_dir = input_dir
        self.files = list(files)
        self.output_dir = output_dir
        self.visualize = visualize

    def write_annotated(self, path: Path, picture: Tensor) -> None:
        """`<output_dir>/annotated/<path relative to the input, as .png>` from a uint8 (3, H, W) picture."""
        destination = self.output_dir / ANNOTATED / Path(self.relative_name(path)).with_suffix(".png")
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_png(destination, picture)

    def batch_files(self, batch_indices: Sequence[int] | None) -> list[Path]:
        if batch_indices is None:
            raise RuntimeError("the predict loop passed no batch indices; predict with a plain DataLoader")
        return [self.files[index] for index in batch_indices]

    def relative_name(self, path: Path) -> str:
        """The file's name as the user gave it: relative to `--input`, with forward slashes."""
        return path.relative_to(self.input_dir).as_posix()
