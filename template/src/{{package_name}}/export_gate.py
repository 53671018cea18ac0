"""The `export` command's workflow: the checkpoint's network written in a staging folder, and kept
only once it passed the parity gate (the file format's own check, the outputs and the monitored
metric against the eager network's). The formats themselves are `export.py`'s."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from . import export
from .compatibility import check_classes, load_model
from .config import Config
from .errors import RunStoppedError
from .files import write_atomic
from .models import exportable
from .rundirs import run_dir_of
from .task import DataModule, Model
from .trainers import single_device_trainer

log = logging.getLogger(__name__)


class ExportParityError(RunStoppedError):
    """The exported file does not compute what the eager network does."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


def export_model(
    config: Config, checkpoint: Path, file_format: export.Format, output: Path | None = None
) -> tuple[export.Parity, Path]:
    """Write the checkpoint's network as `file_format` into `output` (by default `export/` in the
    checkpoint's run directory) once it passed the parity gate: the format's own check of the file,
    its outputs against the eager network's on a batch of validation images, and the monitored
    metric scored on the validation split with each, single-view whatever `model.tta`. Returns the
    gate's figures and the model file; a failed gate writes its figures alone and raises
    `ExportParityError`."""
    export.check_format(file_format, config)
    if config.model.tta != "none":
        log.warning(
            "model.tta %s: export writes the single-view network, and its parity gate compares single-view "
            "outputs and metrics; merging the views is inference.py's and predict's",
            config.model.tta,
        )
    entries_config = config  # what the file's metadata keeps: the views inference.py merges included
    config = config.model_copy(update={"model": config.model.model_copy(update={"compile": False, "tta": "none"})})
    model = load_model(checkpoint, config).eval()
    datamodule = DataModule(config.data, seed=config.seed)
    check_classes(datamodule, model)
    folder = output or (run_dir_of(checkpoint) or checkpoint.resolve().parent) / "export"
    with export.staging(folder) as scratch:
        started = time.perf_counter()
        entries = export.metadata(entries_config, model.class_info)
        path = export.write(model.network, config, entries, file_format, scratch)
        seconds = time.perf_counter() - started
        file_check = export.check_file(path, file_format)
        exported = exportable.ExportedNetwork(export.load(path, file_format))
        datamodule.setup("validate")
        images = next(iter(datamodule.val_dataloader()))[0]
        with torch.inference_mode():
            largest, outputs_match = export.compare(*exportable.paired_outputs(model.network(images), exported(images)))
        metric = config.callbacks.monitor
        eager_metric = _val_metric(config, model, datamodule, metric)
        model.network = exported
        parity = export.Parity(
            file=str(export.model_file(folder, file_format)),
            file_format=file_format,
            exporter=exportable.ONNX_EXPORTER if file_format == "onnx" else "torch.export",
            export_seconds=round(seconds, 2),
            file_check=file_check,
            batch_size=len(images),
            output_max_abs_diff=largest,
            outputs_match=outputs_match,
            metric=metric,
            eager_metric=eager_metric,
            exported_metric=_val_metric(config, model, datamodule, metric),
        )
        write_atomic(export.parity_file(scratch, file_format), parity.to_json(), "the parity figures")
        if not parity.passed:
            export.parity_file(scratch, file_format).replace(export.parity_file(folder, file_format))
            raise ExportParityError(f"export: parity gate failed, nothing exported: {parity.failure()}")
        export.publish(scratch, folder)
    return parity, export.model_file(folder, file_format)


def _val_metric(config: Config, model: Model, datamodule: DataModule, metric: str) -> float:
    """`metric` of `model` on the validation split."""
    results = single_device_trainer(config).validate(model, datamodule=datamodule, verbose=False)
    return float(results[0][metric])
