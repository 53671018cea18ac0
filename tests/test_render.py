"""Every combination of the choices that change files renders only its own files, and they are clean.

`rendered()` (scripts/combinations.py) gives task x logger x ci x docker, with license and Python
version spread pairwise over them. Each is rendered once; the checks per combination read files,
and the linters run once over all the rendered projects (ruff per project settings, hadolint,
check-jsonschema with the CI vendors' schemas, pre-commit's config validation).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from scripts.combinations import choices, rendered

from .conftest import ROOT, Renders, run, tool

pytestmark = pytest.mark.xdist_group("render")  # one worker renders the 72 projects, once
RENDERED = rendered()
JINJA_RESIDUE = re.compile(r"(?<!\$)\{\{\s*\w|\{%|%\}|\{#|\.jinja\b")
"""Jinja left over in a rendered file; GitHub's own `${{ ... }}` expressions are meant to be there."""
TASK_FILES = {
    "classification": ["models/classifier.py"],
    "detection": ["models/detector.py", "data/coco.py"],
    "segmentation": ["models/segmenter.py", "data/masks.py"],
}
TASK_NAMES = {
    "classification": [
        "ImageClassifier",
        "ClassificationDataModule",
        "ImageFolder",
        "SyntheticShapes",
        "MulticlassPrecisionRecallCurve",
    ],
    "detection": [
        "ObjectDetector",
        "DetectionDataModule",
        "BoundingBoxes",
        "MeanAveragePrecision",
        "from .coco import",  # detection's COCO module (segmentation reads COCO masks with its own)
        "DetectionConfusionMatrix",
    ],
    "segmentation": [
        "SemanticSegmenter",
        "SegmentationDataModule",
        "tv_tensors.Mask",
        "read_mask_split",
        "draw_segmentation_masks",
    ],
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
LICENSE_TEXT = {
    "MIT": "MIT License",
    "Apache-2.0": "Apache License",
    "BSD-3-Clause": "BSD 3-Clause License",
    "Proprietary": "All rights reserved",
}
CI_FILES = {"github": ".github/workflows/ci.yml", "gitlab": ".gitlab-ci.yml"}
UPDATE_FILES = {"github": ".github/dependabot.yml", "gitlab": "renovate.json"}
"""Dependency updates as pull (merge) requests, by the CI service's bot."""
DOCS_WORKFLOW = ".github/workflows/docs.yml"
"""GitHub's documentation site: built on every push, published to Pages from main (GitLab: a `pages` job)."""
VENDOR_SCHEMAS = {
    CI_FILES["github"]: "vendor.github-workflows",
    DOCS_WORKFLOW: "vendor.github-workflows",
    CI_FILES["gitlab"]: "vendor.gitlab-ci",
    UPDATE_FILES["github"]: "vendor.dependabot",
    UPDATE_FILES["gitlab"]: "vendor.renovate",
}
"""check-jsonschema's builtin (offline) copy of each vendor's schema for the file."""
DEV_TOOLS = {"pytest", "ruff", "mypy", "types-pyyaml", "pre-commit", "pre-commit-hooks", "httpx", "playwright"}
"""What a project's `dev` extra pins: the versions CI and the pre-commit hooks run, and the clients
of `serve`'s tests."""
DOCS_TOOLS = {"mkdocs", "mkdocs-material", "mkdocstrings", "mkdocstrings-python"}
"""What a project's `docs` extra pins: the versions its site is built with, in CI and in tests/test_docs.py."""


def render_id(answers: dict[str, str]) -> str:
    return "-".join(answers.values())


def project_files(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*") if path.is_file() and ".git" not in path.parts)


@pytest.fixture(scope="module")
def projects(rendered: Renders) -> dict[str, Path]:
    """Every combination, rendered once for all the tests of this module."""
    return {render_id(answers): rendered(**answers) for answers in RENDERED}


def test_every_pair_of_choices_is_rendered() -> None:
    questions = ("task", "logger", "ci", "docker", "license", "python_version")
    for first in questions:
        for second in questions:
            if first < second:
                seen = {(answers[first], answers[second]) for answers in RENDERED}
                assert len(seen) == len(choices(first)) * len(choices(second)), (first, second)


@pytest.mark.parametrize("answers", RENDERED, ids=render_id)
def test_renders_only_the_chosen_files(projects: dict[str, Path], answers: dict[str, str]) -> None:
    project = projects[render_id(answers)]
    package = project / "src" / "vision_project"
    files = project_files(project)
    for path in files:
        assert not JINJA_RESIDUE.search(path.read_text(encoding="utf-8")), f"Jinja residue in {path}"
    # Task: only its own modules and names.
    for task, names in TASK_FILES.items():
        for name in names:
            assert (package / name).is_file() == (task == answers["task"]), f"{name} in a {answers['task']} project"
    assert (package / "data" / "scenes.py").is_file() == (answers["task"] != "classification")
    python = "\n".join(path.read_text() for path in files if path.suffix == ".py")
    assert "task ==" not in python
    for task, names in TASK_NAMES.items():
        if task != answers["task"]:
            leftovers = [name for name in names if name in python]
            assert not leftovers, f"{task} code in a {answers['task']} project: {leftovers}"
    default_yaml = yaml.safe_load((project / "configs" / "default.yaml").read_text())
    assert default_yaml["callbacks"]["monitor"] == MONITORED[answers["task"]]
    # Logger: its class is the one wired, and no other logger is named anywhere.
    logger_code = (package / "loggers.py").read_text()
    for logger, class_name in LOGGER_CLASSES.items():
        assert (class_name in logger_code) == (logger == answers["logger"])
    everything = "\n".join(path.read_text(encoding="utf-8").lower() for path in files)
    for logger in set(LOGGER_PACKAGES) - {answers["logger"]}:
        assert LOGGER_PACKAGES[logger] not in everything, f"{logger} named in a {answers['logger']} project"
    # CI, its dependency updates, and Docker: their files exactly when chosen.
    for ci in CI_FILES:
        for name in (CI_FILES[ci], UPDATE_FILES[ci]):
            assert (project / name).is_file() == (ci == answers["ci"]), f"{name} with ci={answers['ci']}"
    assert not (project / ".github").exists() or answers["ci"] == "github"
    assert (project / DOCS_WORKFLOW).is_file() == (answers["ci"] == "github")
    if answers["ci"] == "gitlab":
        assert yaml.safe_load((project / CI_FILES["gitlab"]).read_text())["pages"]["artifacts"] == {"paths": ["public"]}
    docker = answers["docker"] == "true"
    assert (project / "Dockerfile").is_file() == docker
    assert (project / ".dockerignore").is_file() == docker
    if answers["ci"] != "none":
        assert ("docker run" in (project / CI_FILES[answers["ci"]]).read_text()) == docker
    # License and Python version.
    assert LICENSE_TEXT[answers["license"]] in (project / "LICENSE").read_text()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={answers['python_version']}"
    saved = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {key: str(saved[key]).lower() if key == "docker" else saved[key] for key in answers} == answers
    assert saved["_commit"] == "99.0.0"


def test_ruff_passes_everywhere(projects: dict[str, Path]) -> None:
    """Each project is checked with its own settings (ruff reads the nearest pyproject.toml)."""
    paths = [str(project) for project in projects.values()]
    run([tool("ruff"), "check", "--no-cache", *paths], cwd=Path.cwd())
    run([tool("ruff"), "format", "--check", "--no-cache", *paths], cwd=Path.cwd())


def test_dockerfiles_pass_hadolint(projects: dict[str, Path]) -> None:
    dockerfiles = [str(path) for project in projects.values() if (path := project / "Dockerfile").is_file()]
    assert dockerfiles
    run([tool("hadolint"), "--failure-threshold", "info", *dockerfiles], cwd=Path.cwd())


@pytest.mark.parametrize(("name", "schema"), VENDOR_SCHEMAS.items())
def test_ci_files_match_their_vendors_schema(projects: dict[str, Path], name: str, schema: str) -> None:
    """The CI pipelines, and the dependency-update bots' settings beside them."""
    files = [str(path) for project in projects.values() if (path := project / name).is_file()]
    assert files
    run([tool("check-jsonschema"), "--builtin-schema", schema, *files], cwd=Path.cwd())


def test_github_workflows_are_least_privilege_and_pinned(projects: dict[str, Path]) -> None:
    """Read-only everywhere; only the job that deploys the site to Pages may write there."""
    deploy = {"pages": "write", "id-token": "write"}
    for workflow_file in (file for project in projects.values() for file in project.glob(".github/workflows/*")):
        workflow = yaml.safe_load(workflow_file.read_text())
        assert workflow["permissions"] == {"contents": "read"}
        for name, job in workflow["jobs"].items():
            allowed = deploy if (workflow_file.name, name) == ("docs.yml", "deploy") else None
            assert job.get("permissions") == allowed, (workflow_file, name)
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", step["uses"]), step["uses"]


def test_pre_commit_configs_are_valid_and_check_conflict_markers_always(projects: dict[str, Path]) -> None:
    """test_update.py runs the hook on a project a conflicted `copier update` left behind. Every hook is
    a console script of the `dev` extra, so pre-commit fetches nothing (test_hostile_names.py runs them)."""
    configs = [str(project / ".pre-commit-config.yaml") for project in projects.values()]
    run([tool("pre-commit"), "validate-config", *configs], cwd=Path.cwd())
    for config in configs:
        repositories = yaml.safe_load(Path(config).read_text())["repos"]
        assert [repository["repo"] for repository in repositories] == ["local"]
        hooks = {hook["id"]: hook for repository in repositories for hook in repository["hooks"]}
        assert {"ruff", "ruff-format", "mypy", "check-merge-conflict"} <= set(hooks)
        assert {hook["language"] for hook in hooks.values()} == {"system"}
        assert "--assume-in-merge" in hooks["check-merge-conflict"]["args"]
        for hook in hooks.values():
            assert Path(tool(hook["entry"].split()[0])).is_file(), f"{hook['entry']}: not a dev tool's command"


def pinned(requirements: list[str]) -> dict[str, str]:
    """name -> version of each `name==version` requirement (names normalised as pip does)."""
    versions: dict[str, str] = {}
    for requirement in requirements:
        name, separator, version = requirement.partition("==")
        if separator:
            versions[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip()
    return versions


def test_dev_tools_are_pinned_to_the_versions_the_template_is_tested_with(projects: dict[str, Path]) -> None:
    """One source for a project's tool versions, its `dev` extra (CI installs it, the hooks run it),
    and the same versions here, so these tests check with exactly what projects run."""
    ours = pinned((ROOT / "requirements-dev.txt").read_text().splitlines())
    for project in projects.values():
        dev = tomllib.loads((project / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
        assert len(dev) == len(DEV_TOOLS), f"every dev tool pinned exactly: {dev}"
        assert pinned(dev) == {name: ours.get(name) for name in DEV_TOOLS}
        docs = tomllib.loads((project / "pyproject.toml").read_text())["project"]["optional-dependencies"]["docs"]
        assert len(docs) == len(DOCS_TOOLS), f"every docs tool pinned exactly: {docs}"
        assert pinned(docs) == {name: ours.get(name) for name in DOCS_TOOLS}
