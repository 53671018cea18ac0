"""`copier update` brings template changes into a project without losing the user's edits."""

from __future__ import annotations

from pathlib import Path

import copier
import pytest
import yaml

from .conftest import copy_worktree, git, render


@pytest.fixture
def project_from_v1(tmp_path: Path) -> tuple[Path, Path]:
    """A template repo tagged 1.0.0 and a project rendered from it, committed by its user."""
    template = copy_worktree(tmp_path / "template")
    git("tag", "1.0.0", cwd=template)
    project = tmp_path / "project"
    copier.run_copy(str(template), project, defaults=True, quiet=True, vcs_ref="1.0.0")
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "rendered from 1.0.0", cwd=project)
    return template, project


def release(template: Path, tag: str, path: str, old: str, new: str) -> None:
    file = template / path
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new, 1))
    git("commit", "-q", "-am", f"release {tag}", cwd=template)
    git("tag", tag, cwd=template)


def test_update_merges_template_changes_with_user_edits(project_from_v1: tuple[Path, Path]) -> None:
    template, project = project_from_v1
    # The user tunes the experiment and adds a note to the README.
    default_yaml = project / "configs" / "default.yaml"
    default_yaml.write_text(default_yaml.read_text().replace("max_epochs: 5", "max_epochs: 30"))
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Our notes\n\nTrained on the team's data.\n")
    git("commit", "-q", "-am", "user edits", cwd=project)
    # The template improves a doc string in code the user never touched.
    release(
        template,
        "1.1.0",
        "template/src/{{package_name}}/files.py",
        '"""File writes that readers never see half-done."""',
        '"""File writes that readers never see half-done (write, then rename)."""',
    )

    copier.run_update(project, defaults=True, overwrite=True, unsafe=True, quiet=True)

    assert "max_epochs: 30" in default_yaml.read_text()
    assert "Trained on the team's data." in readme.read_text()
    assert "(write, then rename)" in (project / "src" / "vision_project" / "files.py").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "1.1.0"
    assert "<<<<<<<" not in default_yaml.read_text()


def test_update_can_switch_the_logger(project_from_v1: tuple[Path, Path]) -> None:
    template, project = project_from_v1
    release(template, "1.0.1", "README.md", "# copier-lightning", "# copier-lightning ")
    copier.run_update(project, data={"logger": "csv"}, defaults=True, overwrite=True, unsafe=True, quiet=True)
    loggers = (project / "src" / "vision_project" / "loggers.py").read_text()
    assert "CSVLogger" in loggers
    assert "TensorBoardLogger" not in loggers
    assert "tensorboard" not in (project / "pyproject.toml").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["logger"] == "csv"


def test_rendered_answers_file_records_source_and_version(tmp_path: Path, template_repo: Path) -> None:
    project = render(template_repo, tmp_path / "p", logger="csv")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == str(template_repo)
    assert answers["logger"] == "csv"
    assert "distribution_name" not in answers  # derived values are recomputed, never stored
