"""The answer combinations the template is tested with, derived from copier.yml's choices.

One source for pytest's parametrisation and for the template repository's CI matrix, so a new
choice in copier.yml reaches both with no other edit:

- `trained()`: every task x logger; each is type-checked, trained and runs its own test suite.
- `rendered()`: every combination of the choices that change which files a project has (task x
  logger x ci x docker), each rendered and linted, with license and python_version spread over
  them so that every pair of values of any two choice questions is rendered at least once.

`python scripts/combinations.py` prints the GitHub Actions matrix of `trained()` as JSON.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

COPIER_YML = Path(__file__).resolve().parents[1] / "copier.yml"
TRAINED = ("task", "logger")
"""Questions whose answers change the Python code: every combination trains."""
FILE_CHOICES = ("task", "logger", "ci", "docker")
"""Questions whose answers change which files a project has: every combination renders."""
PAIRWISE = ("license", "python_version")
"""Questions whose values are spread over the rendered combinations, pairwise with every other."""
SELECT_ENV = "COPIER_LIGHTNING_COMBOS"
"""`task-logger,...` limits `trained()` to some combinations (a CI job each, or a quick local run)."""

Answers = dict[str, str]


def questions(path: Path = COPIER_YML) -> dict[str, Any]:
    """copier.yml's questions (settings such as `_subdirectory` left out)."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {key: value for key, value in data.items() if not key.startswith("_")}


def choices(question: str, path: Path = COPIER_YML) -> list[str]:
    """The values a question offers: its `choices` (a list, or a mapping of label to value), or
    true and false for a bool."""
    details = questions(path)[question]
    if details.get("type") == "bool":
        return ["true", "false"]
    options = details["choices"]
    return [str(value) for value in (options.values() if isinstance(options, Mapping) else options)]


def combo_id(answers: Mapping[str, str]) -> str:
    return "-".join(answers[question] for question in TRAINED)


def trained(path: Path = COPIER_YML) -> list[Answers]:
    """Every task x logger answer set, or those `COPIER_LIGHTNING_COMBOS` names."""
    every = _product(TRAINED, path)
    wanted = {name for name in os.environ.get(SELECT_ENV, "").split(",") if name}
    unknown = wanted - {combo_id(answers) for answers in every}
    if unknown:
        raise ValueError(f"{SELECT_ENV} names unknown combinations: {sorted(unknown)}")
    return [answers for answers in every if not wanted or combo_id(answers) in wanted]


def rendered(path: Path = COPIER_YML) -> list[Answers]:
    """Every combination of `FILE_CHOICES`, each also given a license and a Python version so that
    every pair of values of any two choice questions occurs in some combination (greedy all-pairs)."""
    combinations = _product(FILE_CHOICES, path)
    spread = {question: choices(question, path) for question in PAIRWISE}
    uncovered = _pairs({**{q: choices(q, path) for q in FILE_CHOICES}, **spread})
    result: list[Answers] = []
    for base in combinations:
        candidates = [dict(zip(spread, values, strict=True)) for values in itertools.product(*spread.values())]
        best = max(candidates, key=lambda extra: len(uncovered & _pairs_of({**base, **extra})))
        answers = {**base, **best}
        uncovered -= _pairs_of(answers)
        result.append(answers)
    if uncovered:
        raise ValueError(f"pairs no rendered combination covers: {sorted(uncovered)[:5]}")
    return result


def github_matrix(path: Path = COPIER_YML) -> dict[str, list[dict[str, str]]]:
    """`strategy.matrix` for GitHub Actions: one job per trained combination."""
    return {"include": [{**answers, "combo": combo_id(answers)} for answers in trained(path)]}


def _product(names: tuple[str, ...], path: Path) -> list[Answers]:
    values = [choices(name, path) for name in names]
    return [dict(zip(names, combination, strict=True)) for combination in itertools.product(*values)]


Pair = tuple[str, str, str, str]


def _pairs(options: Mapping[str, list[str]]) -> set[Pair]:
    return {
        (first, first_value, second, second_value)
        for first, second in itertools.combinations(sorted(options), 2)
        for first_value in options[first]
        for second_value in options[second]
    }


def _pairs_of(answers: Mapping[str, str]) -> set[Pair]:
    return {
        (first, answers[first], second, answers[second]) for first, second in itertools.combinations(sorted(answers), 2)
    }


if __name__ == "__main__":
    print(json.dumps(github_matrix()))
