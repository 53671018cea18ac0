"""Every task x logger combination renders a clean project that passes its own checks."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import Renders, choices, combinations, combo_id, run, tool

COMBINATIONS = combinations()
JINJA_RESIDUE = re.compile(r"\{\{\s*\w|\{%|%\}|\{#|\.jinja\b")
TASK_FILES = {
    "classification": ["models/classifier.py"],
    "detection": ["models/detector.py", "data/coco.py"],
    "segmentation": ["models/segmenter.py", "data/masks.py"],
}
TASK_NAMES = {
    "classification": ["ImageClassifier", "ClassificationDataModule", "ImageFolder", "SyntheticShapes"],
    "detection": ["ObjectDetector", "DetectionDataModule", "BoundingBoxes", "MeanAveragePrecision", "coco"],
    "segmentation": ["SemanticSegmenter", "SegmentationDataModule", "tv_tensors.Mask", "read_mask_split"],
}
"""Names that only the task's own code uses: none may appear in another task's project."""
LOGGER_CLASSES = {
    "tensorboard": "TensorBoardLogger",
    "csv": "CSVLogger",
    "mlflow": "MLFlowLogger",
    "wandb": "WandbLogger",
}
LOGGER_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
"""A project names no other logger's package, in code, dependencies or docs (CSV needs none)."""
MONITORED = {"classification": "val_acc", "detection": "val_map_50", "segmentation": "val_miou"}


def project_files(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*") if path.is_file() and ".git" not in path.parts)


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combo_id)
def test_renders_only_the_chosen_task_and_logger(rendered: Renders, answers: dict[str, str]) -> None:
    project = rendered(**answers)
    package = project / "src" / "vision_project"
    for path in project_files(project):
        text = path.read_text(encoding="utf-8")
        assert not JINJA_RESIDUE.search(text), f"Jinja residue in {path.relative_to(project)}"
    logger_code = (package / "loggers.py").read_text()
    for logger in choices("logger"):
        assert (LOGGER_CLASSES[logger] in logger_code) == (logger == answers["logger"])
    everything = "\n".join(path.read_text(encoding="utf-8").lower() for path in project_files(project))
    for logger in set(LOGGER_PACKAGES) - {answers["logger"]}:
        assert LOGGER_PACKAGES[logger] not in everything, f"{logger} named in a {answers['logger']} project"
    for task, files in TASK_FILES.items():
        for name in files:
            assert (package / name).is_file() == (task == answers["task"]), f"{name} in a {answers['task']} project"
    assert (package / "data" / "scenes.py").is_file() == (answers["task"] != "classification")
    python = "\n".join(path.read_text() for path in project_files(project) if path.suffix == ".py")
    assert "task ==" not in python
    for task, task_names in TASK_NAMES.items():
        if task != answers["task"]:
            leftovers = [name for name in task_names if name in python]
            assert not leftovers, f"{task} code in a {answers['task']} project: {leftovers}"
    monitored = yaml.safe_load((project / "configs" / "default.yaml").read_text())["callbacks"]["monitor"]
    assert monitored == MONITORED[answers["task"]]
    saved = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {key: saved[key] for key in answers} == answers
    assert saved["_commit"] == "99.0.0"


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combo_id)
def test_default_yaml_matches_the_config_defaults(rendered: Renders, answers: dict[str, str]) -> None:
    project = rendered(**answers)
    check = (
        "from pathlib import Path; from vision_project.config import Config, load_config; "
        "assert load_config([Path('configs/default.yaml')]) == Config(), 'configs/default.yaml drifted'"
    )
    run([sys.executable, "-c", check], cwd=project)


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combo_id)
def test_lint_format_and_strict_types(rendered: Renders, answers: dict[str, str]) -> None:
    project = rendered(**answers)
    run([tool("ruff"), "check", "--no-cache", "."], cwd=project)
    run([tool("ruff"), "format", "--check", "--no-cache", "."], cwd=project)
    run([tool("mypy"), "--cache-dir", str(project.parent / ".mypy_cache")], cwd=project)


@pytest.mark.parametrize("python_version", choices("python_version"))
@pytest.mark.parametrize("answers", COMBINATIONS, ids=combo_id)
def test_lint_at_every_python_version(rendered: Renders, answers: dict[str, str], python_version: str) -> None:
    """ruff's rules follow the lowest supported Python (`target-version`), so each choice can flag other code."""
    project = rendered(**answers, python_version=python_version)
    run([tool("ruff"), "check", "--no-cache", "."], cwd=project)
    run([tool("ruff"), "format", "--check", "--no-cache", "."], cwd=project)


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combo_id)
def test_project_test_suite_passes(rendered: Renders, answers: dict[str, str]) -> None:
    project = rendered(**answers)
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"], cwd=project)
    assert re.search(r"\d+ passed", result.stdout), result.stdout


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combo_id)
def test_every_import_is_a_declared_dependency(rendered: Renders, answers: dict[str, str]) -> None:
    project = rendered(**answers)
    declared = {
        re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].lower()
        for requirement in tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    imported: set[str] = set()
    for path in (project / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"vision_project"}
    owners = importlib.metadata.packages_distributions()
    undeclared = {
        module: owners.get(module)
        for module in third_party
        if not {d.lower() for d in owners.get(module, [])} & declared
    }
    assert not undeclared, f"imported but not in [project.dependencies]: {undeclared}"


def test_installs_with_pip_and_exposes_the_command(rendered: Renders, tmp_path: Path) -> None:
    project = rendered()
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    run([*pip, "--target", str(target), str(project)], cwd=tmp_path)
    assert (target / "bin" / "vision_project").is_file()
    assert (target / "vision_project" / "cli.py").is_file()
    metadata = next(target.glob("vision_project-*.dist-info")) / "METADATA"
    assert "Requires-Dist: lightning!=2.6.2,!=2.6.3,>=2.4" in metadata.read_text()
