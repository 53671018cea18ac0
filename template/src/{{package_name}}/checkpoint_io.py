"""How a fit writes its checkpoints: atomically, in the checkpoint's own folder.

Lightning's own `TorchCheckpointIO` writes through fsspec's transaction, which writes to a temp file
in TMPDIR and moves it: where `output_dir` is on another file system the move is a copy, and a kill
during that copy leaves a truncated checkpoint under its final name (and the temp file in TMPDIR).
This one goes through `files.write_atomic` like every other file the project writes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .files import remove_stale_partials, write_atomic, write_error


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints serialized in memory, then written beside their final name, fsynced and renamed
    over it: a kill leaves the previous checkpoint or none, a full disk a `WriteError` naming the
    file, and neither leaves a partial file behind (a killed run's is removed at the next save)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        destination = Path(path)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(destination, error, "the checkpoint") from None
        remove_stale_partials(destination.parent)
        serialized = io.BytesIO()
        torch.save(checkpoint, serialized)
        write_atomic(destination, serialized.getbuffer(), "the checkpoint")
