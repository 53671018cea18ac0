"""Before `copier update`: refuse to go on when a stored answer is no longer one of its question's choices.

Copier drops a stored answer that the new template version does not accept and, without a
terminal, takes the default instead, silently: a project on `logger: neptune` would come out on
TensorBoard. This stops the update with one line per such answer, naming the choices, unless the
answer is given anew with `--data question=value`.

Usage (from copier.yml's `_migrations`): check_answers.py NEW_COPIER_YML ANSWERS_FILE DATA_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def stale_answers(questions: dict[str, Any], answers: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """One message per stored answer the questions no longer accept, unless given anew."""
    problems = []
    for name, details in questions.items():
        if name.startswith("_") or not isinstance(details, dict) or "choices" not in details:
            continue
        if name in given or name not in answers:
            continue
        options = details["choices"]
        values = list(options.values()) if isinstance(options, dict) else list(options)
        values = [option["value"] if isinstance(option, dict) else option for option in values]
        if answers[name] not in values:
            problems.append(
                f"copier-lightning: this template version no longer offers {name} {answers[name]!r}; "
                f"choose one of {', '.join(map(str, values))} with: copier update --data {name}=VALUE"
            )
    return problems


def main(copier_yml: str, answers_file: str, data_json: str) -> int:
    questions = yaml.safe_load(Path(copier_yml).read_text(encoding="utf-8"))
    answers = yaml.safe_load(Path(answers_file).read_text(encoding="utf-8")) or {}
    problems = stale_answers(questions, answers, json.loads(data_json))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
