"""What the benchmarks share: rendering a task's default project from this working tree, the
task's class names and training loss for the code they run in it, and running that code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import copier

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("classification", "detection", "segmentation")

NAMES = {
    "DATAMODULE": {
        "classification": "ClassificationDataModule",
        "detection": "DetectionDataModule",
        "segmentation": "SegmentationDataModule",
    },
    "MODULE": {"classification": "classifier", "detection": "detector", "segmentation": "segmenter"},
    "MODEL": {"classification": "ImageClassifier", "detection": "ObjectDetector", "segmentation": "SemanticSegmenter"},
    "LOSS": {  # the body of `loss_of(model, batch)`: the loss the task's training_step minimises
        "classification": "images, targets = batch\n    return model.criterion(model(images), targets)",
        "detection": "images, targets = batch\n"
        "    return torch.stack(list(model.network(images, targets).values())).sum()",
        "segmentation": "images, masks = batch\n    return model.criterion(model(images), masks)",
    },
}
"""Placeholders that `fill` replaces in a benchmark's code, per task."""


def render(task: str, folder: str) -> Path:
    """The default project of `task` (this working tree, uncommitted changes included) in `build/<folder>/<task>`."""
    project = ROOT / "build" / folder / task
    shutil.rmtree(project, ignore_errors=True)
    copier.run_copy(str(ROOT), project, data={"task": task}, defaults=True, quiet=True, vcs_ref="HEAD", unsafe=True)
    return project


def fill(code: str, task: str, **values: str) -> str:
    """`code` with the task's names (`NAMES`) and `values` put in for their placeholders."""
    for placeholder, value in {**{key: names[task] for key, names in NAMES.items()}, **values}.items():
        code = code.replace(placeholder, value)
    return code


def project_env(project: Path, *, with_tests: bool = False) -> dict[str, str]:
    """The environment that imports the project from its source tree (and its `tests` package)."""
    paths = [str(project / "src"), *([str(project)] if with_tests else [])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONWARNINGS": "ignore"}


def run_code(project: Path, code: str, *, with_tests: bool = False) -> subprocess.CompletedProcess[str]:
    """`python -c code` in the project, its output captured; a failure is for the caller to print."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=project_env(project, with_tests=with_tests),
        capture_output=True,
        text=True,
        check=False,
    )


def output_or_error(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip() if result.returncode == 0 else result.stderr[-3000:]
