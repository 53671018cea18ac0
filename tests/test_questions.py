"""Answers: validators refuse bad ones without writing anything; odd but valid ones render cleanly."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import copier
import pytest
import yaml

from .conftest import TEMPLATE_VERSION, Renders, render, run, tool


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "Vision"}, "must be a lower-case Python identifier"),
        ({"package_name": "my-project"}, "must be a lower-case Python identifier"),
        ({"package_name": "2fast"}, "must be a lower-case Python identifier"),
        ({"package_name": "class"}, "is a Python keyword, a standard-library module or a dependency"),
        ({"package_name": "json"}, "is a Python keyword, a standard-library module or a dependency"),
        ({"package_name": "torch"}, "is a Python keyword, a standard-library module or a dependency"),
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
    command = [tool("copier"), "copy", "--defaults", "--data", "package_name=os", str(template_repo), str(destination)]
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


def test_hostile_free_text_renders_into_valid_files(template_repo: Path, tmp_path: Path) -> None:
    answers = {
        "project_name": 'Ünïcode "Quoted" \\ Project\'s',
        "package_name": "hostile",
        "description": "Says \"hi\" \\ with {{ braces }} and {% tags %} and 'quotes'",
        "author_name": 'O\'Brien "Bob" Zoë',
        "license": "Proprietary",
        "python_version": "3.13",
    }
    project = render(template_repo, tmp_path / "hostile", **answers)
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert metadata["description"] == answers["description"]
    assert metadata["authors"][0]["name"] == answers["author_name"]
    assert metadata["license"] == "LicenseRef-Proprietary"
    assert metadata["requires-python"] == ">=3.13"
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["description"] == answers["description"]
    assert answers["description"] in (project / "README.md").read_text()
    run([tool("ruff"), "check", "--no-cache", "."], cwd=project)
    run([sys.executable, "-m", "hostile", "fit", "--help"], cwd=project)


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


def test_template_needs_no_trust_flag(template_repo: Path, tmp_path: Path) -> None:
    """No tasks, migrations or extensions: a copy is plain rendering, safe without --trust."""
    copier.run_copy(str(template_repo), tmp_path / "p", defaults=True, quiet=True, vcs_ref=TEMPLATE_VERSION)
    assert (tmp_path / "p" / "pyproject.toml").is_file()
