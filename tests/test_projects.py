"""Every task x logger project type-checks strictly, trains, and passes its own test suite (which
fits through the project's command line, in process and, for DDP, as `python -m <package> fit`).

These are the slow tests (marked `trained`), one CI job per combination; `COPIER_LIGHTNING_COMBOS`
picks some of them locally. The other answers keep their defaults here: `test_render.py` covers them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from scripts.combinations import choices, combo_id, trained

from .conftest import Renders, git, run, tool

pytestmark = pytest.mark.trained
TRAINED = trained()


@pytest.mark.parametrize("answers", TRAINED, ids=combo_id)
def test_default_yaml_matches_the_config_defaults(rendered: Renders, answers: dict[str, str]) -> None:
    project = rendered(**answers)
    check = (
        "from pathlib import Path; from vision_project.config import Config; "
        "from vision_project.config_sources import load_config; "
        "assert load_config([Path('configs/default.yaml')]) == Config(), 'configs/default.yaml drifted'"
    )
    run([sys.executable, "-c", check], cwd=project)


@pytest.mark.parametrize("answers", TRAINED, ids=combo_id)
def test_strict_types(rendered: Renders, answers: dict[str, str]) -> None:
    project = rendered(**answers)
    run([tool("mypy")], cwd=project)


LOGGER_FILES = ["tests/test_logger.py", "tests/test_config.py"]
"""What differs between two projects of one task and different loggers: the logger and its config."""
SHARED_FILES = [
    "tests/test_multinode.py",
    "tests/test_durability.py",
    "tests/test_resume.py",
    "tests/test_tune.py",
    "tests/test_crossval.py",
]
"""Test files that are the same in every task's project (checked below)."""
SHARED_SLOW = [
    "tests/test_multinode.py",
    "tests/test_durability.py",
    "tests/test_resume.py::test_signal_stops",
    "tests/test_tune.py",
    "tests/test_crossval.py::test_a_killed",
    "tests/test_logger.py::test_tune",
    "tests/test_logger.py::test_each_fit_is_a_run",
    "tests/test_logger.py::test_two_fits_started_together",
    "tests/test_logger.py::test_a_resumed_fit",
]
"""Slow tests (pytest node id prefixes) of code that no task changes: launchers, run directories,
durable writes, signals, sweeps, and how a logger keeps runs apart, continues one and groups a
study's. They run in the first task's projects only. Each task still trains with each logger,
resumes exactly after a kill, and runs DDP (test_cli.py) in its own suite."""


def selected_tests(answers: dict[str, str]) -> list[str]:
    """The whole suite, both tiers, with the default logger; with another logger, the tests of what
    differs (the rest of the project is the same files, already tested with the default logger);
    for a task other than the first, without the shared slow tests."""
    selection = [] if answers["logger"] == choices("logger")[0] else LOGGER_FILES
    if answers["task"] != choices("task")[0]:
        selection += [f"--deselect={prefix}" for prefix in SHARED_SLOW]
    return selection


@pytest.mark.parametrize("answers", TRAINED, ids=combo_id)
def test_project_test_suite_passes(rendered: Renders, answers: dict[str, str]) -> None:
    project = rendered(**answers)
    every_tier = ["-m", "slow or not slow"]  # the project's own `pytest` runs the fast tier only
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *every_tier]
    result = run([*pytest, *selected_tests(answers)], cwd=project)
    assert re.search(r"\d+ passed", result.stdout), result.stdout
    # Every test writes below its temporary directory: the project is as it was, ignored files included.
    left = git("status", "--porcelain", "--ignored", "--untracked-files=all", cwd=project).splitlines()
    assert [line for line in left if "__pycache__/" not in line] == [], left


def test_only_the_logger_files_differ_between_loggers(rendered: Renders) -> None:
    """Why the other loggers run `LOGGER_FILES` only: nothing else in their projects differs."""
    default, *others = choices("logger")
    base = rendered(logger=default)
    expected = {"src/vision_project/loggers.py", "configs/default.yaml", "pyproject.toml", "README.md", *LOGGER_FILES}
    expected |= {"src/vision_project/config.py", ".copier-answers.yml", ".gitignore"}
    expected |= {"docs/index.md", "docs/training.md", "docs/tune.md"}  # the site's pages of the README's logger parts
    for logger in others:
        project = rendered(logger=logger)
        differing = {
            path.relative_to(project).as_posix()
            for path in project.rglob("*")
            if path.is_file()
            and ".git" not in path.parts
            and "__pycache__" not in path.parts
            and path.read_bytes() != (base / path.relative_to(project)).read_bytes()
        }
        assert differing <= expected, f"{logger}: {sorted(differing - expected)}"


def test_the_shared_slow_tests_are_the_same_in_every_task(rendered: Renders) -> None:
    """Why `SHARED_SLOW` runs for the first task only: its files are the same in every task, and the
    logger tests differ only in the name of the task's metric."""
    first, *others = (rendered(task=task) for task in choices("task"))
    for project in others:
        for name in SHARED_FILES:
            assert (project / name).read_bytes() == (first / name).read_bytes(), f"{project.name}: {name}"
        lines = [
            (project / "tests/test_logger.py").read_text().splitlines(),
            (first / "tests/test_logger.py").read_text().splitlines(),
        ]
        differing = [pair for pair in zip(*lines, strict=True) if pair[0] != pair[1]]
        assert all(re.fullmatch(r"(VAL|TEST)_METRIC = .*", line) for pair in differing for line in pair), differing
    for prefix in SHARED_SLOW:
        path, _, name = prefix.partition("::")
        assert name in (first / path).read_text(), prefix


LOGGER_SECTION = (
    "import json; from vision_project.config import Config; print(json.dumps(Config().to_data()['logger']))"
)
TAKES_SECTIONS = """
import json, sys
from vision_project.config import Config
from vision_project.key_policy import compatible_config
for section in json.loads(sys.argv[1]):
    stored = Config.from_data(compatible_config({**Config().to_data(), "logger": section}))
    assert stored == Config(), (section, stored.logger)
"""


def test_a_checkpoint_written_before_a_logger_change_loads(rendered: Renders) -> None:
    """After `copier update --data logger=...`, a checkpoint's config holds the old logger's section:
    each project takes each other logger's, falling back to its own logger's defaults."""
    projects = {logger: rendered(logger=logger) for logger in choices("logger")}
    sections = {
        logger: json.loads(run([sys.executable, "-c", LOGGER_SECTION], cwd=project).stdout)
        for logger, project in projects.items()
    }
    for logger, project in projects.items():
        others = [section for other, section in sections.items() if other != logger]
        run([sys.executable, "-c", TAKES_SECTIONS, json.dumps(others)], cwd=project)


def _canonical(distribution: str) -> str:
    """A distribution's name as PEP 503 compares them: `huggingface_hub` is `huggingface-hub`."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


@pytest.mark.parametrize("answers", TRAINED, ids=combo_id)
def test_every_import_is_a_declared_dependency(rendered: Renders, answers: dict[str, str]) -> None:
    project = rendered(**answers)
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    extras = metadata["optional-dependencies"]
    requirements = [*metadata["dependencies"], *extras["export"], *extras["serve"]]  # `export`, `serve` import these
    declared = {_canonical(re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0]) for requirement in requirements}
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
        if not {_canonical(d) for d in owners.get(module, [])} & declared
    }
    assert not undeclared, f"imported but not in [project.dependencies] or the export / serve extra: {undeclared}"


def test_installs_with_pip_and_exposes_the_command(rendered: Renders, tmp_path: Path) -> None:
    project = rendered()
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    run([*pip, "--target", str(target), str(project)], cwd=tmp_path)
    assert (target / "bin" / "vision_project").is_file()
    assert (target / "vision_project" / "cli.py").is_file()
    assert (target / "vision_project" / "serve" / "static" / "index.html").is_file()  # the page ships in the wheel
    metadata = next(target.glob("vision_project-*.dist-info")) / "METADATA"
    assert "Requires-Dist: lightning!=2.6.2,!=2.6.3,>=2.6" in metadata.read_text()
