"""`copier update` brings template releases into a project without losing the user's edits.

Each test tags a copy of the template `1.0.0`, renders a project from it (the post-copy hook makes
it a git repository with a first commit), edits it as a user would, releases a change of the
template as a newer tag, and updates.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import copier
import pytest
import yaml
from copier.errors import TaskError

from .conftest import copy_worktree, git, render, tool

CONFLICT_MARKERS = ("<<<<<<< ", "=======\n", ">>>>>>> ")
"""Conflict markers as Copier writes them (and pre-commit's check-merge-conflict finds them): a line's start."""


@pytest.fixture
def template(tmp_path: Path) -> Path:
    template = copy_worktree(tmp_path / "template")
    git("tag", "1.0.0", cwd=template)
    return template


def project_from(template: Path, destination: Path, **answers: str) -> Path:
    """A project rendered from tag 1.0.0, committed by the post-copy hook."""
    project = render(template, destination, vcs_ref="1.0.0", **answers)
    assert git("status", "--porcelain", cwd=project) == ""
    return project


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def release(template: Path, tag: str, changes: dict[str, tuple[str, str]]) -> None:
    """Commit `changes` (template path: (old, new)) to the template and tag them as `tag`."""
    for path, (old, new) in changes.items():
        edit(template / path, old, new)
    git("commit", "-q", "-am", f"release {tag}", cwd=template)
    git("tag", tag, cwd=template)


def commit_all(project: Path, message: str) -> None:
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", message, cwd=project)


def update(project: Path, **data: str) -> None:
    copier.run_update(project, data=data, defaults=True, overwrite=True, unsafe=True, quiet=True)


def files_with_conflicts(project: Path) -> list[str]:
    return sorted(
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file()
        and ".git" not in path.parts
        and any(line.startswith(CONFLICT_MARKERS) for line in path.read_text().splitlines(keepends=True))
    )


FILES_PY = "template/src/{{package_name}}/files.py"
DEFAULT_YAML = "template/configs/default.yaml.jinja"


def test_user_edits_survive_and_template_changes_arrive(
    template: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = project_from(template, tmp_path / "project")
    default_yaml = project / "configs" / "default.yaml"
    edit(default_yaml, "max_epochs: 5", "max_epochs: 30")
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Our notes\n\nTrained on the team's data.\n")
    commit_all(project, "user edits")
    release(
        template,
        "1.1.0",
        {FILES_PY: ('"""File writes that readers never see half-done."""', '"""Writes that are whole or absent."""')},
    )

    update(project)

    assert "conflict markers" not in capfd.readouterr().err
    assert "max_epochs: 30" in default_yaml.read_text()
    assert "Trained on the team's data." in readme.read_text()
    assert '"""Writes that are whole or absent."""' in (project / "src" / "vision_project" / "files.py").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "1.1.0"
    assert files_with_conflicts(project) == []


def test_a_real_conflict_is_named_and_leaves_markers_that_the_pre_commit_hook_refuses(
    template: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_from(template, tmp_path / "project")
    edit(project / "configs" / "default.yaml", "patience: 5", "patience: 12")
    commit_all(project, "longer patience")
    release(template, "1.1.0", {DEFAULT_YAML: ("patience: 5", "patience: 8")})
    capfd.readouterr()

    update(project)

    assert files_with_conflicts(project) == ["configs/default.yaml"]
    told = capfd.readouterr().err
    assert "copier-lightning: the update left conflict markers in 1 file(s): configs/default.yaml" in told
    assert "git add" in told
    conflicted = (project / "configs" / "default.yaml").read_text()
    assert "patience: 12" in conflicted
    assert "patience: 8" in conflicted
    # The hook as the project configures it (a console script of its dev extra: nothing to fetch).
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit"))
    monkeypatch.setenv("PATH", str(Path(tool("pre-commit")).parent), prepend=os.pathsep)
    hook = subprocess.run(
        [tool("pre-commit"), "run", "check-merge-conflict", "--files", "configs/default.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert hook.returncode == 1
    assert "Merge conflict string" in hook.stdout


def test_switching_the_logger_swaps_its_code_and_dependency(template: Path, tmp_path: Path) -> None:
    project = project_from(template, tmp_path / "project")
    release(template, "1.0.1", {"README.md": ("# copier-lightning", "# copier-lightning ")})

    update(project, logger="csv")

    loggers = (project / "src" / "vision_project" / "loggers.py").read_text()
    assert "CSVLogger" in loggers
    assert "TensorBoardLogger" not in loggers
    assert "tensorboard" not in (project / "pyproject.toml").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["logger"] == "csv"
    assert files_with_conflicts(project) == []


def test_switching_the_task_removes_the_old_tasks_files_even_when_edited(template: Path, tmp_path: Path) -> None:
    """What README's "Keeping up with the template" warns about: commit what you want to keep first."""
    project = project_from(template, tmp_path / "project")
    classifier = project / "src" / "vision_project" / "models" / "classifier.py"
    declaration = "class ImageClassifier(TaskModule[Batch, Tensor]):"
    edit(classifier, declaration, f"{declaration}  # tuned")
    edit(project / "configs" / "default.yaml", "max_epochs: 5", "max_epochs: 30")
    commit_all(project, "user edits")
    release(template, "1.0.1", {"README.md": ("# copier-lightning", "# copier-lightning ")})

    update(project, task="detection")

    package = project / "src" / "vision_project"
    assert not classifier.exists()
    assert (package / "models" / "detector.py").is_file()
    assert (package / "data" / "coco.py").is_file()
    assert "max_epochs: 30" in (project / "configs" / "default.yaml").read_text()  # shared files keep edits
    assert "tuned" in git("show", "HEAD:src/vision_project/models/classifier.py", cwd=project)  # and git has it


def test_an_answer_the_new_version_withdrew_stops_the_update(
    template: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = project_from(template, tmp_path / "project", logger="csv")
    release(template, "2.0.0", {"copier.yml": ("    CSV files: csv\n", "")})
    answers_before = (project / ".copier-answers.yml").read_text()

    with pytest.raises(TaskError):
        update(project)

    assert "this template version no longer offers logger 'csv'; choose one of tensorboard" in capfd.readouterr().err
    assert (project / ".copier-answers.yml").read_text() == answers_before
    assert git("status", "--porcelain", cwd=project) == ""

    update(project, logger="tensorboard")  # answering anew goes through
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["logger"] == "tensorboard"


def release_renaming_default_yaml(template: Path, migrate: bool) -> None:
    """Release 1.1.0: configs/default.yaml becomes configs/base.yaml, with or without a migration."""
    old = template / DEFAULT_YAML
    old.rename(old.with_name("base.yaml.jinja"))
    if migrate:
        copier_yml = template / "copier.yml"
        settings = yaml.safe_load(copier_yml.read_text())
        settings["_migrations"].append(
            {
                "version": "1.1.0",
                "command": "git mv configs/default.yaml configs/base.yaml",
                "when": "{{ _stage == 'before' }}",
            }
        )
        copier_yml.write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True))
    git("add", "-A", cwd=template)
    git("commit", "-q", "-m", "release 1.1.0: configs/default.yaml is now configs/base.yaml", cwd=template)
    git("tag", "1.1.0", cwd=template)


def test_a_release_that_renames_a_file_keeps_the_users_edits_with_a_migration(tmp_path: Path) -> None:
    """The migration moves the user's file before the merge, so the edit comes along (as a conflict
    with the template's new file, which has no common ancestor); without it, the edit is lost."""
    projects = {}
    for migrate in (True, False):
        template = copy_worktree(tmp_path / f"template-{migrate}")
        git("tag", "1.0.0", cwd=template)
        project = project_from(template, tmp_path / f"project-{migrate}")
        edit(project / "configs" / "default.yaml", "max_epochs: 5", "max_epochs: 30")
        commit_all(project, "user edits")
        release_renaming_default_yaml(template, migrate)
        update(project)
        assert not (project / "configs" / "default.yaml").exists()
        projects[migrate] = (project / "configs" / "base.yaml").read_text()
    assert "max_epochs: 30" in projects[True]
    assert "max_epochs: 30" not in projects[False]


def test_rendered_answers_file_records_source_and_version(tmp_path: Path, template_repo: Path) -> None:
    project = render(template_repo, tmp_path / "p", logger="csv")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == str(template_repo)
    assert answers["logger"] == "csv"
    assert "distribution_name" not in answers  # derived values are recomputed, never stored


def test_a_copy_from_a_relative_path_warns_and_names_the_absolute_one(template: Path, tmp_path: Path) -> None:
    """Copier stores the relative path, which `copier update` cannot use from inside the project."""
    (tmp_path / "work").mkdir()
    relative = Path("..") / template.name
    command = [tool("copier"), "copy", "--trust", "--defaults", "--vcs-ref", "1.0.0", str(relative), "out/my-project"]
    result = subprocess.run(command, cwd=tmp_path / "work", capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert f"copied from the relative path '{relative}'" in result.stderr
    assert f"copy from an absolute path ({template.resolve()}) or a URL" in result.stderr
    assert "Next steps:\n  cd out/my-project\n  pip install -e '.[dev]'" in result.stdout
    assert "  vision_project fit" in result.stdout


def test_a_copy_from_an_absolute_path_does_not_warn(template: Path, tmp_path: Path) -> None:
    command = [tool("copier"), "copy", "--trust", "--defaults", "--vcs-ref", "1.0.0", str(template), "p"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "relative path" not in result.stderr
