"""Fixtures that render the template through Copier's real API from a committed, tagged copy.

Copier renders the latest tag of a git template, so the working tree (tracked files and untracked,
non-ignored ones, i.e. what you are about to commit) is copied into a temporary repository,
committed and tagged. Git and Copier run with throwaway settings, never the user's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, cast

import copier
import plumbum
import pytest

from scripts.combinations import questions

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS: dict[str, Any] = questions()
TEMPLATE_VERSION = "99.0.0"


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="session", autouse=True)
def isolated_tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Git identity, Copier settings and a mypy cache of our own, so the tests never touch the user's."""
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / "gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Template Tests\n\temail = tests@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    settings = home / "copier-settings.yml"
    settings.write_text("{}\n")
    with pytest.MonkeyPatch.context() as patch:
        set_environment(patch, GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1")
        set_environment(patch, COPIER_SETTINGS_PATH=str(settings))
        # Each pytest-xdist worker's share of the cores for torch's threads (a user's own setting
        # wins): two workers whose torch each spins a thread per core wait on each other most of the
        # time (two fast tiers at once on 2 cores: 140-190 s with torch's default, 42 s with one each).
        if "OMP_NUM_THREADS" not in os.environ:
            workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
            set_environment(patch, OMP_NUM_THREADS=str(max(1, len(os.sched_getaffinity(0)) // workers)))
        # One mypy cache for every project checked here: torch's and Lightning's stubs are read once.
        set_environment(patch, MYPY_CACHE_DIR=str(home / "mypy-cache"))
        # These would override the identity in gitconfig.
        set_environment(patch, GIT_AUTHOR_NAME=None, GIT_AUTHOR_EMAIL=None)
        set_environment(patch, GIT_COMMITTER_NAME=None, GIT_COMMITTER_EMAIL=None)
        yield


def set_environment(patch: pytest.MonkeyPatch, **variables: str | None) -> None:
    """Set (or, for None, remove) variables in `os.environ` and in plumbum's copy of it, which it
    took when imported and with which Copier runs git and the template's tasks."""
    copier_environment = cast("MutableMapping[str, str]", plumbum.local.env)
    for environment in (os.environ, copier_environment):
        for name, value in variables.items():
            if value is not None:
                patch.setitem(environment, name, value)
            elif name in environment:
                patch.delitem(environment, name)


def copy_worktree(destination: Path) -> Path:
    """The template's files as git would commit them now, in a fresh repository."""
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=ROOT).split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git("init", "-q", cwd=destination)
    git("add", "-A", cwd=destination)
    git("commit", "-q", "-m", "template under test", cwd=destination)
    return destination


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory, isolated_tools: None) -> Path:
    repo = copy_worktree(tmp_path_factory.mktemp("template"))
    git("tag", TEMPLATE_VERSION, cwd=repo)
    return repo


def render(template: Path, destination: Path, *, vcs_ref: str = TEMPLATE_VERSION, **answers: str) -> Path:
    """`copier copy --trust` of tag `vcs_ref`, with defaults for every question not answered here."""
    unknown = set(answers) - set(QUESTIONS)
    assert not unknown, f"not questions in copier.yml: {sorted(unknown)}"  # copier ignores unknown keys
    copier.run_copy(str(template), destination, data=answers, defaults=True, unsafe=True, quiet=True, vcs_ref=vcs_ref)
    return destination


class Renders:
    """Each answer set is rendered once per session and shared by every test that needs it."""

    def __init__(self, template: Path, root: Path) -> None:
        self.template = template
        self.root = root
        self.cache: dict[tuple[tuple[str, str], ...], Path] = {}

    def __call__(self, **answers: str) -> Path:
        key = tuple(sorted(answers.items()))
        if key not in self.cache:
            name = "-".join(value for _, value in key) or "defaults"
            self.cache[key] = render(self.template, self.root / name, **answers)
        return self.cache[key]


@pytest.fixture(scope="session")
def rendered(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Renders:
    return Renders(template_repo, tmp_path_factory.mktemp("rendered"))


def run(command: list[str], cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run a tool from this environment inside a rendered project; fail with its output."""
    env = {**os.environ, "PYTHONPATH": str(cwd / "src")}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed in {cwd}:\n{result.stdout}\n{result.stderr}"
    return result


def tool(name: str) -> str:
    """A console script installed beside this interpreter (ruff, mypy, ...)."""
    return str(Path(sys.executable).with_name(name))
