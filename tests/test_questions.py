"""Answers: validators refuse bad ones without writing anything; odd but valid ones render cleanly."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import copier
import pytest
import yaml

from .conftest import TEMPLATE_VERSION, Renders, git, render, run, set_environment, tool


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "Vision"}, "must be a lower-case Python identifier"),
        ({"package_name": "my-project"}, "must be a lower-case Python identifier"),
        ({"package_name": "2fast"}, "must be a lower-case Python identifier"),
        ({"package_name": "class"}, "is a Python keyword, a standard-library module or a dependency"),
        ({"package_name": "json"}, "is a Python keyword, a standard-library module or a dependency"),
        ({"package_name": "torch"}, "is a Python keyword, a standard-library module or a dependency"),
        ({"package_name": "a" * 51}, "is 51 characters long; at most 50"),
        ({"project_name": "   "}, "project_name must not be empty"),
        ({"author_email": "nobody"}, "author_email 'nobody' is not an e-mail address"),
        ({"task": "captioning"}, "Invalid choice"),
        ({"logger": "neptune"}, "Invalid choice"),
    ],
)
def test_bad_answers_are_refused_and_nothing_is_written(
    template_repo: Path, tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    destination = tmp_path / "project"
    with pytest.raises(ValueError, match=message):
        render(template_repo, destination, **answers)
    assert not destination.exists()


def test_copier_cli_refuses_a_bad_answer(template_repo: Path, tmp_path: Path) -> None:
    destination = tmp_path / "project"
    command = [tool("copier"), "copy", "--trust", "--defaults", "--data", "package_name=os"]
    command += [str(template_repo), str(destination)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "package_name 'os' is a Python keyword" in result.stderr
    assert not destination.exists()


def test_reserved_names_cover_this_python() -> None:
    listed = (Path(__file__).resolve().parents[1] / "includes" / "reserved_names.jinja").read_text()
    missing = {name for name in sys.stdlib_module_names if name.islower() and not name.startswith("_")}
    missing = {name for name in missing if f"'{name}'" not in listed}
    assert not missing, f"stdlib modules missing from includes/reserved_names.jinja: {sorted(missing)}"


def test_package_name_is_derived_from_the_project_name(rendered: Renders) -> None:
    project = rendered(project_name="My Great-Vision Project 2")
    assert (project / "src" / "my_great_vision_project_2" / "cli.py").is_file()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "my-great-vision-project-2"
    assert pyproject["project"]["scripts"] == {"my_great_vision_project_2": "my_great_vision_project_2.cli:main"}


HOSTILE = {
    "project_name": 'Ünïcode "Quoted" \\ Project\'s',
    "package_name": "hostile",
    "description": "Says \"hi\" \\ with {{ braces }} and {% tags %} and 'quotes': a colon # and a hash",
    "author_name": 'O\'Brien "Bob" Zoë',
}


@pytest.mark.parametrize(
    "answers",
    [
        {
            "task": "classification",
            "logger": "mlflow",
            "ci": "github",
            "license": "Proprietary",
            "python_version": "3.13",
        },
        {"task": "detection", "logger": "wandb", "ci": "gitlab", "license": "MIT", "python_version": "3.12"},
        {"task": "segmentation", "logger": "csv", "ci": "none", "license": "BSD-3-Clause", "python_version": "3.11"},
    ],
    ids=lambda answers: answers["task"],
)
def test_hostile_free_text_renders_valid_files(template_repo: Path, tmp_path: Path, answers: dict[str, str]) -> None:
    project = render(template_repo, tmp_path / "hostile", **HOSTILE, **answers)
    for path in project.rglob("*"):
        if not path.is_file() or ".git" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".py":
            ast.parse(text, filename=str(path))
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert metadata["description"] == HOSTILE["description"]
    assert metadata["authors"][0]["name"] == HOSTILE["author_name"]
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["description"] == HOSTILE["description"]
    assert HOSTILE["description"] in (project / "README.md").read_text()
    run([tool("ruff"), "check", "--no-cache", "."], cwd=project)
    run([sys.executable, "-m", "hostile", "fit", "--help"], cwd=project)
    if answers["logger"] == "mlflow":
        check = "from hostile.config import Config; print(Config().logger.experiment_name)"
        printed = run([sys.executable, "-c", check], cwd=project).stdout.strip()
        assert printed == HOSTILE["project_name"]


@pytest.mark.parametrize(
    ("license_choice", "expected"),
    [
        ("MIT", "MIT License"),
        ("Apache-2.0", "Apache License"),
        ("BSD-3-Clause", "BSD 3-Clause License"),
        ("Proprietary", "All rights reserved"),
    ],
)
def test_license_file_matches_the_answer(rendered: Renders, license_choice: str, expected: str) -> None:
    project = rendered(license=license_choice, author_name="Ada Lovelace", copyright_year="2031")
    text = (project / "LICENSE").read_text()
    assert expected in text
    if license_choice != "Apache-2.0":
        assert "2031" in text
        assert "Ada Lovelace" in text


def test_copying_needs_trust_and_writes_nothing_without_it(template_repo: Path, tmp_path: Path) -> None:
    """The template runs hooks/post_copy.py and hooks/check_answers.py, so Copier asks for --trust."""
    destination = tmp_path / "p"
    with pytest.raises(copier.errors.UnsafeTemplateError):
        copier.run_copy(str(template_repo), destination, defaults=True, quiet=True, vcs_ref=TEMPLATE_VERSION)
    assert not destination.exists()


def test_a_copy_is_a_git_repository_with_a_first_commit(rendered: Renders) -> None:
    project = rendered()
    assert git("status", "--porcelain", cwd=project) == ""
    assert git("log", "--format=%s", cwd=project).splitlines() == ["Start from copier-lightning"]
    assert git("log", "--format=%an <%ae>", cwd=project).strip() == "Template Tests <tests@example.com>"


def test_a_copy_without_git_identity_is_committed_as_the_author(template_repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    with pytest.MonkeyPatch.context() as patch:
        set_environment(patch, GIT_CONFIG_GLOBAL=str(home / "gitconfig"))
        project = render(template_repo, tmp_path / "p", author_name="Ada Lovelace", author_email="ada@example.org")
    assert git("log", "--format=%an <%ae>", cwd=project).strip() == "Ada Lovelace <ada@example.org>"


def test_a_copy_with_skip_tasks_is_complete(rendered: Renders, template_repo: Path, tmp_path: Path) -> None:
    project = tmp_path / "skipped"
    copier.run_copy(
        str(template_repo), project, defaults=True, unsafe=True, quiet=True, vcs_ref=TEMPLATE_VERSION, skip_tasks=True
    )
    assert not (project / ".git").exists()

    def files(root: Path) -> dict[str, bytes]:
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in root.rglob("*")
            if path.is_file() and ".git" not in path.relative_to(root).parts
        }

    assert files(project) == files(rendered())


def test_a_copy_inside_a_repository_is_left_for_its_owner(template_repo: Path, tmp_path: Path) -> None:
    git("init", "-q", cwd=tmp_path)
    project = render(template_repo, tmp_path / "monorepo" / "vision")
    assert not (project / ".git").exists()
    assert git("status", "--porcelain", cwd=tmp_path).strip() == "?? monorepo/"  # untracked, for its owner
