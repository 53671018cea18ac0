"""The `export` command: the trained network written for deployment, as ONNX or as a
`torch.export` program (`.pt2`), carrying what a consumer needs to feed it, and checked against the
eager network before it is kept (the parity gate, run by `export_gate.export_model`).

Imports torch alone; onnx and onnxruntime (the project's `export` extra) only when ONNX is asked for.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from . import PROGRAM, TASK, TEMPLATE_VERSION
from .config import Config, normalization
from .errors import ConfigError, first_line
from .files import process_running, sync_folder, write_atomic, write_error
from .models import exportable

Format = Literal["onnx", "pt2"]
FORMATS: tuple[Format, ...] = ("onnx", "pt2")
OUTPUT_RTOL = 1e-3
OUTPUT_ATOL = 1e-4
"""Every exported output x must satisfy |x - eager| <= OUTPUT_ATOL + OUTPUT_RTOL * |eager| (float32
kernels of two runtimes differ in the order they sum in, not in what they compute)."""
METRIC_RTOL = 0.005
"""The monitored metric scored with the exported file must be within 0.5 % of the eager score."""
STAGING = re.compile(r"^\.export-(?:(?P<pid>\d+)-)?")
"""A staging folder's name, `.export-<process id>-<random>` (older ones lack the process id)."""

ExportedCall = Callable[..., tuple[Tensor, ...]]
"""An exported file made callable: input tensors in, its output tensors out, on the CPU."""


def model_file(folder: Path, file_format: Format) -> Path:
    return folder / f"model.{file_format}"


def parity_file(folder: Path, file_format: Format) -> Path:
    return folder / f"parity-{file_format}.json"


def metadata_file(folder: Path) -> Path:
    """The `.pt2` file's sidecar: ONNX keeps the same entries in its metadata properties."""
    return folder / "model.pt2.json"


def metadata(config: Config, class_info: Mapping[str, Any]) -> dict[str, Any]:
    """What a consumer of the file needs to feed it and read its outputs, and the config it was
    trained with (what `inference.load_model` rebuilds the pre- and post-processing from)."""
    mean, std = normalization(config.data)
    return {
        "task": TASK,
        "project": PROGRAM,
        "template_version": TEMPLATE_VERSION,
        **class_info,
        "image_size": config.data.image_size,
        "mean": mean,
        "std": std,
        **exportable.description(config),
        "config": config.to_data(),
    }


def check_format(file_format: Format, config: Config) -> None:
    """A format this network cannot be exported to, or images smaller than the exported network
    takes, are a `ConfigError` saying why."""
    smallest = max(exportable.SMALLEST.get("height", 0), exportable.SMALLEST.get("width", 0))
    if config.data.image_size < smallest:
        raise ConfigError(
            f"data.image_size {config.data.image_size}: the exported network takes images of {smallest} pixels or more"
        )
    if file_format in exportable.UNAVAILABLE:
        raise ConfigError(f"--format {file_format}: {exportable.UNAVAILABLE[file_format]}")
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if file_format == "onnx" and missing:
        raise ConfigError(f"--format onnx needs {', '.join(missing)}, not installed: pip install -e '.[export]'")


def write(network: nn.Module, config: Config, entries: Mapping[str, Any], file_format: Format, folder: Path) -> Path:
    """Export `network` (on the CPU, in eval mode) into `folder`; returns the model file. A file
    that cannot be written (a full disk) is a `WriteError` naming it."""
    module = exportable.exportable(network).eval()
    inputs = exportable.example_inputs()
    path = model_file(folder, file_format)
    try:
        if file_format == "onnx":
            _write_onnx(module, inputs, path, entries)
        else:
            _write_pt2(module, inputs, path)
            write_atomic(metadata_file(folder), json.dumps(entries, indent=2) + "\n", "the model's metadata")
    except OSError as error:  # the exporter's own write of `path`
        raise write_error(path, error, "the exported model") from None
    return path


def _write_onnx(module: nn.Module, inputs: tuple[Tensor, ...], path: Path, entries: Mapping[str, Any]) -> None:
    import onnx

    # The exporters warn of what the parity gate checks next (Python values frozen into a trace)
    # and of their own deprecations: not the user's to act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            inputs,
            str(path),
            **_onnx_exporter_options(),
            opset_version=exportable.ONNX_OPSET,
            input_names=list(exportable.INPUTS),
            output_names=list(exportable.OUTPUTS),
            external_data=False,  # one self-contained file (ONNX protobufs hold up to 2 GB)
            verbose=False,
        )
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {name: json.dumps(value) for name, value in entries.items()})
    write_atomic(path, model.SerializeToString(), "the exported model")


def _onnx_exporter_options() -> dict[str, Any]:
    """The dynamo exporter (`torch.export` underneath) with the dynamic axes as dimensions; the
    TorchScript-based one, for networks `torch.export` cannot capture, with the axes by name."""
    if exportable.ONNX_EXPORTER == "dynamo":
        return {"dynamo": True, "dynamic_shapes": _dynamic_shapes()}
    return {"dynamo": False, "dynamic_axes": exportable.DYNAMIC_AXES}


def _write_pt2(module: nn.Module, inputs: tuple[Tensor, ...], path: Path) -> None:
    program = torch.export.export(module, inputs, dynamic_shapes=_dynamic_shapes(), strict=False)
    serialized = io.BytesIO()  # torch's own writer reports a full disk as a bare RuntimeError
    torch.export.save(program, serialized)
    write_atomic(path, serialized.getbuffer(), "the exported model")


def _dynamic_shapes() -> tuple[dict[int, torch.export.Dim], ...]:
    """`exportable.DYNAMIC_AXES` of the inputs as `torch.export` dimensions: an axis the program
    would fix to the example's size fails the export instead of passing unnoticed."""
    dimensions = {name: torch.export.Dim(name, min=smallest) for name, smallest in exportable.SMALLEST.items()}
    return tuple(
        {axis: dimensions[name] for axis, name in exportable.DYNAMIC_AXES[input_name].items()}
        for input_name in exportable.INPUTS
    )


def check_file(path: Path, file_format: Format) -> str:
    """The format's own check of a written file, by name; a failure raises."""
    if file_format == "onnx":
        import onnx

        onnx.checker.check_model(str(path), full_check=True)
        return "onnx.checker (full check)"
    torch.export.load(str(path))
    return "torch.export.load"


def load(path: Path, file_format: Format) -> ExportedCall:
    """The exported file as a function of CPU tensors, run by onnxruntime or as an ExportedProgram."""
    if file_format == "onnx":
        return _onnx_call(_onnx_session(path))
    program = torch.export.load(str(path)).module()

    def run_program(*inputs: Tensor) -> tuple[Tensor, ...]:
        with torch.inference_mode():
            outputs = program(*(tensor.detach().cpu() for tensor in inputs))
        return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)

    return run_program


def open_exported(path: Path, option: str = "--model") -> tuple[ExportedCall, dict[str, Any]]:
    """A file `export` wrote (`model.onnx`, or `model.pt2` beside its metadata) as a function of CPU
    tensors, and its metadata; anything else is a `ConfigError` naming `option` and the file."""
    if path.suffix not in (".onnx", ".pt2") or not path.is_file():
        raise ConfigError(f"{option} {path}: not a file `export` wrote (model.onnx or model.pt2)")
    try:
        if path.suffix == ".onnx":
            session = _onnx_session(path)
            entries = session.get_modelmeta().custom_metadata_map
            run, found = _onnx_call(session), {name: json.loads(value) for name, value in entries.items()}
        else:
            found = json.loads(metadata_file(path.parent).read_text(encoding="utf-8"))
            run = load(path, "pt2")
    except ConfigError:
        raise
    except Exception as error:  # onnxruntime, torch.export and json each raise their own kinds
        raise ConfigError(f"{option} {path}: not an exported model of this project ({first_line(error)})") from None
    if found.get("project") != PROGRAM or "config" not in found:
        raise ConfigError(f"{option} {path}: not exported by this version of {PROGRAM}; export the checkpoint again")
    return run, found


def _onnx_session(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"{path}: running an ONNX file needs onnxruntime (the project's `export` extra)") from None
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _onnx_call(session: Any) -> ExportedCall:
    names = [given.name for given in session.get_inputs()]

    def run_onnx(*inputs: Tensor) -> tuple[Tensor, ...]:
        arrays = (tensor.detach().cpu().contiguous().numpy() for tensor in inputs)
        feed = dict(zip(names, arrays, strict=True))
        return tuple(torch.from_numpy(output) for output in session.run(None, feed))

    return run_onnx


def compare(eager: Sequence[Tensor], exported: Sequence[Tensor]) -> tuple[float, bool]:
    """The largest absolute difference between paired outputs, and whether every value is within
    the tolerance; outputs of different shapes never match."""
    if [output.shape for output in eager] != [output.shape for output in exported]:
        return math.inf, False
    largest, within = 0.0, True
    for expected, got in zip(eager, exported, strict=True):
        expected, got = expected.detach().cpu().double(), got.detach().cpu().double()
        difference = (got - expected).abs()
        if difference.numel():
            largest = max(largest, float(difference.max()))
            within = within and bool((difference <= OUTPUT_ATOL + OUTPUT_RTOL * expected.abs()).all())
    return largest, within


@dataclass(frozen=True)
class Parity:
    """The parity gate's figures: the file's own check, its outputs against the eager network's on
    a batch of validation images, and the monitored metric scored on the validation split with each."""

    file: str
    file_format: Format
    exporter: str
    export_seconds: float
    file_check: str
    batch_size: int
    output_max_abs_diff: float
    outputs_match: bool
    metric: str
    eager_metric: float
    exported_metric: float

    @property
    def metric_relative_diff(self) -> float:
        return abs(self.exported_metric - self.eager_metric) / max(abs(self.eager_metric), 1e-12)

    @property
    def metric_matches(self) -> bool:
        return abs(self.exported_metric - self.eager_metric) <= METRIC_RTOL * abs(self.eager_metric)

    @property
    def passed(self) -> bool:
        return self.outputs_match and self.metric_matches

    def to_json(self) -> str:
        figures = asdict(self) | {
            "output_tolerance": {"rtol": OUTPUT_RTOL, "atol": OUTPUT_ATOL},
            "metric_relative_diff": self.metric_relative_diff,
            "metric_tolerance": {"rtol": METRIC_RTOL},
            "metric_matches": self.metric_matches,
            "passed": self.passed,
        }
        return json.dumps(figures, indent=2) + "\n"

    def failure(self) -> str:
        """One line saying what failed the gate."""
        reasons = []
        if not self.outputs_match:
            reasons.append(
                f"outputs differ by up to {self.output_max_abs_diff:.3g} "
                f"(tolerance {OUTPUT_ATOL} + {OUTPUT_RTOL} x |eager|)"
            )
        if not self.metric_matches:
            reasons.append(
                f"{self.metric} {self.exported_metric:.4f} exported vs {self.eager_metric:.4f} eager "
                f"({100 * self.metric_relative_diff:.2f} % apart, at most {100 * METRIC_RTOL:.1f} %)"
            )
        return "; ".join(reasons)


@contextmanager
def staging(folder: Path) -> Iterator[Path]:
    """A hidden scratch folder in `folder`, removed afterwards: files are moved into `folder` only
    once they passed, so a failed export leaves nothing a deployment could pick up by mistake. The
    scratch folders a killed export left are removed first."""
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(folder)
    scratch = Path(tempfile.mkdtemp(prefix=f".export-{os.getpid()}-", dir=folder))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def remove_stale_staging(folder: Path) -> None:
    """Remove the scratch folders in `folder` of exports that no longer run (killed midway): their
    files were never checked, and a model file there is as large as the model."""
    for path in folder.glob(".export-*"):
        match = STAGING.match(path.name)
        if path.is_dir() and match and not (match.group("pid") and process_running(int(match.group("pid")))):
            shutil.rmtree(path, ignore_errors=True)


def publish(scratch: Path, folder: Path) -> None:
    """Move every file of `scratch` into `folder`, each by one atomic rename; the parity figures
    last, so that a parity file saying "passed" always lies beside the model it checked."""
    for path in sorted(scratch.iterdir(), key=lambda path: path.name.startswith("parity-")):
        path.replace(folder / path.name)
    sync_folder(folder)
