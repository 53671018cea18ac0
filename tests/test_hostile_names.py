"""Answers at the edges of what copier.yml accepts give projects that pass what their own CI runs.

test_render.py lints every combination under the default name. Here each task is rendered once
more with hostile but valid answers, spread so that each occurs: a one-letter name, a 40-character
one, one with digits, the highest Python version offered, loggers and CI services other than the
defaults. Each project then runs its CI's steps as its CI runs them (`ruff check .`, `ruff format
--check .`, `mypy`, `pytest`) and its pre-commit hooks (`pre-commit run --all-files`) with git
allowed no remote and pip no index, as on a machine offline.

Type-checking and the project's tests are the slow part: marked `trained`, each runs in the trained
CI job of its task x logger (`COPIER_LIGHTNING_COMBOS` selects it as it selects test_projects.py's);
the lint and the other hooks run with the render tests.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from scripts.combinations import Answers, choices, combo_id, trained

from .conftest import Renders, git, run, tool

HIGHEST_PYTHON = max(choices("python_version"), key=lambda version: tuple(map(int, version.split("."))))
FORTY_CHARACTERS = "Coastal Flood Segmentation Benchmark Kit"
HOSTILE: list[Answers] = [
    {"task": "classification", "project_name": "X", "logger": "csv", "ci": "gitlab", "docker": "false"},
    {"task": "detection", "project_name": "Line 9 Inspector", "logger": "mlflow", "python_version": HIGHEST_PYTHON},
    {"task": "segmentation", "project_name": FORTY_CHARACTERS, "logger": "wandb", "ci": "none"},
]
SELECTED = {combo_id(answers) for answers in trained()}


def hostile_id(answers: Answers) -> str:
    name = re.sub(r"\W+", "_", answers["project_name"])
    return f"{answers['task']}-{name}"


def package_of(project: Path) -> str:
    """The package name Copier derived from the project name (stored with the answers)."""
    return str(yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"])


@pytest.fixture
def offline_pre_commit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """pre-commit with a store of its own, finding the dev tools on PATH as in an activated venv,
    and unable to fetch: git may clone local paths only (a `repo:` URL fails, as offline) and pip
    has no index (a `language: python` hook could not install)."""
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit"))
    monkeypatch.setenv("PATH", str(Path(tool("pre-commit")).parent), prepend=os.pathsep)
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file")
    monkeypatch.setenv("PIP_NO_INDEX", "1")


def test_the_hostile_answers_cover_every_task_and_edge() -> None:
    assert sorted(answers["task"] for answers in HOSTILE) == sorted(choices("task"))
    names = [answers["project_name"] for answers in HOSTILE]
    assert {len(name) for name in names} >= {1, 40}
    assert any(re.search(r"\d", name) for name in names)
    assert any(answers.get("python_version") == HIGHEST_PYTHON for answers in HOSTILE)
    for question in ("logger", "ci"):
        assert {answers.get(question, choices(question)[0]) for answers in HOSTILE} - {choices(question)[0]}


@pytest.mark.usefixtures("offline_pre_commit")
@pytest.mark.parametrize("answers", HOSTILE, ids=hostile_id)
def test_lint_and_hooks_pass(
    rendered: Renders, answers: Answers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = rendered(**answers)
    assert (project / "src" / package_of(project) / "cli.py").is_file()
    run([tool("ruff"), "check", "."], cwd=project)
    run([tool("ruff"), "format", "--check", "."], cwd=project)
    # The post-copy hook made the project a repository with one commit; pre-commit checks what git tracks.
    assert Path(git("rev-parse", "--show-toplevel", cwd=project).strip()).resolve() == project.resolve()
    assert git("status", "--porcelain", cwd=project) == ""
    monkeypatch.setenv("SKIP", "mypy")  # the slow hook: the test below runs it
    run([tool("pre-commit"), "run", "--all-files", "--show-diff-on-failure"], cwd=project)
    assert git("status", "--porcelain", cwd=project) == "", "a hook changed the rendered files"
    assert not list((tmp_path / "pre-commit").glob("repo*")), "pre-commit fetched a hook repository"


@pytest.mark.trained
@pytest.mark.usefixtures("offline_pre_commit")
@pytest.mark.parametrize("answers", [a for a in HOSTILE if combo_id(a) in SELECTED], ids=hostile_id)
def test_strict_types_and_own_tests_pass(rendered: Renders, answers: Answers) -> None:
    """mypy as CI runs it, then as the pre-commit hook runs it (on mypy's warm cache: seconds),
    then the project's tests as CI runs them."""
    project = rendered(**answers)
    run([tool("mypy")], cwd=project)
    run([tool("pre-commit"), "run", "mypy", "--all-files"], cwd=project)
    result = run([tool("pytest"), "-q", "-p", "no:cacheprovider"], cwd=project)
    assert re.search(r"\d+ passed", result.stdout), result.stdout
