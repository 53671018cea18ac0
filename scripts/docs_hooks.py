"""MkDocs hook of the template's own site (`hooks:` in mkdocs.yml): a page per question of copier.yml,
written from copier.yml and from the conditional file names under template/ at every build, so what
the site says a question offers and which files each answer brings cannot drift from the template.
Nothing it writes is committed."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # MkDocs loads a hook by its path, and its command is not run from here
    sys.path.insert(0, str(ROOT))

from scripts.combinations import choices, questions  # noqa: E402

CONDITION = re.compile(r"\{%\s*if\s+(.+?)\s*%\}(.*?)\{%\s*endif\s*%\}")
"""A conditional part of a file name: `{% if logger == 'mlflow' %}loggers.py{% endif %}`."""
PAGES = "questions"


def asked() -> dict[str, dict[str, Any]]:
    """The questions Copier asks, in copier.yml's order (derived values, `when: false`, left out)."""
    return {name: details for name, details in questions().items() if details.get("when") is not False}


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """The questions' pages go into the navigation after "Getting started"."""
    pages: list[Any] = [{"All questions": f"{PAGES}/index.md"}]
    pages += [{name: f"{PAGES}/{name}.md"} for name in asked()]
    nav = config.nav or []
    config.nav = [*nav[:1], {"Questions": pages}, *nav[1:]]
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, f"{PAGES}/index.md", content=index_page()))
    for name, details in asked().items():
        files.append(File.generated(config, f"{PAGES}/{name}.md", content=question_page(name, details)))
    return files


def index_page() -> str:
    lines = [
        "# Questions",
        "",
        "What `copier copy` asks, generated from `copier.yml` when this site is built. Answer on the",
        "command line with `--data NAME=VALUE` (`copier copy --trust --defaults --data task=detection SRC DEST`).",
        "",
        "| question | what | default |",
        "| --- | --- | --- |",
    ]
    for name, details in asked().items():
        lines.append(f"| [`{name}`]({name}.md) | {details.get('help', '')} | {default_text(details)} |")
    return "\n".join(lines) + "\n"


def question_page(name: str, details: Mapping[str, Any]) -> str:
    lines = [f"# `{name}`", "", str(details.get("help", "")), ""]
    lines += ["| | |", "| --- | --- |", f"| type | `{details.get('type', 'str')}` |"]
    lines += [f"| default | {default_text(details)} |"]
    if "validator" in details:
        lines.append("| checked | yes: a wrong answer stops Copier before any file is written |")
    offered = details.get("choices")
    if offered is not None or details.get("type") == "bool":
        labels = offered if isinstance(offered, Mapping) else {str(value): value for value in offered or ()}
        by_value = {str(value): str(label) for label, value in labels.items()}
        lines += ["", "## Choices", "", "| answer | what | files it adds | includes it renders |"]
        lines.append("| --- | --- | --- | --- |")
        for value in choices(name):
            added = ", ".join(f"`{path}`" for path in files_added(name, value)) or "none of their own"
            included = ", ".join(f"`{path}`" for path in includes_of(value)) or ""
            lines.append(f"| `{value}` | {by_value.get(value, '')} | {added} | {included} |")
    lines += ["", f"Defined in `copier.yml`; page generated when this site is built ({len(asked())} questions)."]
    return "\n".join(lines) + "\n"


def default_text(details: Mapping[str, Any]) -> str:
    default = details.get("default")
    if isinstance(default, str) and "{{" in default:
        return "derived from the other answers"
    return f"`{json.dumps(default) if not isinstance(default, str) else default}`"


def files_added(question: str, value: str) -> list[str]:
    """The files under template/ whose name has a condition on `question` that holds for `value`."""
    template = ROOT / "template"
    names = sorted(str(path.relative_to(template)) for path in template.rglob("*") if path.is_file())
    return [shown for name in names if (shown := _shown_name(name, question, value)) is not None]


def _shown_name(name: str, question: str, value: str) -> str | None:
    conditions = CONDITION.findall(name)
    mine = [condition for condition, _ in conditions if re.search(rf"\b{question}\b", condition)]
    if not mine or not all(_holds(condition, question, value) for condition in mine):
        return None
    shown = CONDITION.sub(lambda match: match.group(2), name).replace("{{package_name}}", "<package>")
    return shown.removesuffix(".jinja")


def _holds(condition: str, question: str, value: str) -> bool:
    answer: Any = value == "true" if value in ("true", "false") else value
    template = jinja2.Environment(autoescape=False).from_string(f"{{% if {condition} %}}1{{% endif %}}")
    return template.render({question: answer}) == "1"


def includes_of(value: str) -> Iterator[str]:
    """The files of includes/ named after an answer (`includes/readme/report_detection.md.jinja`)."""
    for path in sorted((ROOT / "includes").rglob("*.jinja")):
        if re.search(rf"(^|[_/]){re.escape(value)}([_.]|$)", str(path.relative_to(ROOT))):
            yield str(path.relative_to(ROOT))
