"""The base of each task's `predict` writer (`predictions.py`): which file each prediction belongs
to, and where `--visualize` puts the pictures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from .errors import ConfigError
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
        self.annotated = self.png_per_file(output_dir / ANNOTATED) if visualize else {}

    def png_per_file(self, folder: Path) -> dict[Path, Path]:
        """`<folder>/<path relative to the input, as .png>` for each file; two that would share one
        (`a.png` and `a.jpg`) are a `ConfigError` naming both, before any prediction is made."""
        outputs: dict[Path, Path] = {}
        for path in self.files:
            output = folder / Path(self.relative_name(path)).with_suffix(".png")
            if output in outputs:
                raise ConfigError(
                    f"--input {self.input_dir}: {outputs[output]} and {path} would both be predicted as {output}"
                )
            outputs[output] = path
        return {path: output for output, path in outputs.items()}

    def write_annotated(self, path: Path, picture: Tensor) -> None:
        """`<output_dir>/annotated/<path relative to the input, as .png>` from a uint8 (3, H, W) picture."""
        destination = self.annotated[path]
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_png(destination, picture)

    def batch_files(self, batch_indices: Sequence[int] | None) -> list[Path]:
        if batch_indices is None:
            raise RuntimeError("the predict loop passed no batch indices; predict with a plain DataLoader")
        return [self.files[index] for index in batch_indices]

    def relative_name(self, path: Path) -> str:
        """The file's name as the user gave it: relative to `--input`, with forward slashes."""
        return path.relative_to(self.input_dir).as_posix()
