"""Where a config comes from, later wins: a checkpoint's stored config (validate, test, predict,
resume), YAML files (`--config`, repeatable) and dotted command-line overrides (`--trainer.max_epochs 3`).

Hand-written rather than a CLI framework's: it keeps `--help` and config errors free of torch
(LightningCLI imports it), layers a checkpoint's config under the user's files, and parses YAML
and the command line to the same typed scalars, so that `Config` validates one merged mapping
strictly, once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .config import Config
from .errors import ConfigError


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-3` as a string; this loader reads it as the float everyone means."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def read_yaml_file(path: Path) -> dict[str, Any]:
    """Read one `--config` file; a missing file or bad YAML is a `ConfigError` naming the file."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: file not found") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"--config {path}: {problem}{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of config keys at the top level")
    return data


def parse_overrides(args: Sequence[str]) -> list[tuple[str, Any]]:
    """Turn `--section.key VALUE` / `--section.key=VALUE` pairs into (dotted key, typed value)."""
    overrides: list[tuple[str, Any]] = []
    position = 0
    while position < len(args):
        arg = args[position]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"unexpected argument {arg!r}: overrides look like --section.key VALUE")
        key, separator, raw = arg[2:].partition("=")
        if not separator:
            if position + 1 >= len(args):
                raise ConfigError(f"--{key}: missing value")
            position += 1
            raw = args[position]
        try:
            value = yaml.load(raw, Loader=_YamlLoader)
        except yaml.YAMLError:
            value = raw
        overrides.append((key, value))
        position += 1
    return overrides


def load_config(
    files: Iterable[Path] = (),
    overrides: Iterable[tuple[str, Any]] = (),
    base: Mapping[str, Any] | None = None,
) -> Config:
    """Merge base data, YAML files and overrides (later wins), then validate once."""
    merged: dict[str, Any] = _deep_merge({}, base or {})
    for path in files:
        merged = _deep_merge(merged, read_yaml_file(path))
    for dotted_key, value in overrides:
        _set_dotted(merged, dotted_key, value)
    return Config.from_data(merged)


def _deep_merge(into: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(into)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        elif isinstance(value, Mapping):
            result[key] = _deep_merge({}, value)
        else:
            result[key] = value
    return result


def _set_dotted(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    node = data
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            section = ".".join(parents[: depth + 1])
            raise ConfigError(f"--{dotted_key}: {section} is a value, not a section")
        node = child
    node[leaf] = value
