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
from typing import Any, NoReturn

import yaml

from .config import Config
from .errors import ConfigError

MAX_YAML_VALUES = 10_000
"""More values than any config holds, counted with aliases expanded: a few lines of aliases of
aliases otherwise expand to billions ("billion laughs"), and validating them would never end."""


class RefusedYamlError(yaml.constructor.ConstructorError):
    """Valid YAML that no config is: a key given twice or that is not a name, aliases that expand
    without bound, a value JSON cannot hold."""

    def __init__(self, problem: str, node: yaml.Node) -> None:
        super().__init__(problem=problem, problem_mark=node.start_mark)


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML, read to what a config is (JSON data): YAML 1.1 reads `1e-3` as a string and this
    loader as the float everyone means; a date stays the text it was written as; a duplicate key,
    which YAML lets the last one win silently, is refused, as are the expansions above."""

    def construct_document(self, node: yaml.Node) -> Any:
        _count_values(node, {})
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be given again
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise RefusedYamlError("a key that is a list or a mapping is not a name", key_node)
            key = self.construct_object(key_node)
            if not isinstance(key, str):
                raise RefusedYamlError(f"key {key!r} is not a name", key_node)
            if key in seen:
                raise RefusedYamlError(f"duplicate key {key!r}", key_node)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _as_written(loader: _YamlLoader, node: yaml.Node) -> str:
    """A date, as the text it is written as: JSON, which a config is, has no dates."""
    return str(node.value)


def _refused(loader: _YamlLoader, node: yaml.Node) -> NoReturn:
    raise RefusedYamlError(f"!!{node.tag.rsplit(':', 1)[-1]} is not a config value", node)


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)
_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _as_written)
for _tag in ("binary", "set"):  # bytes and sets, which JSON has no type for either
    _YamlLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refused)


def _count_values(node: yaml.Node, counted: dict[int, int]) -> int:
    """How many values `node` holds with its aliases expanded, each shared node counted once
    (`counted`, by id) so that counting stays as fast as reading; refused past `MAX_YAML_VALUES`,
    and where an alias refers to a node it lies in."""
    if id(node) in counted:
        if counted[id(node)] < 0:
            raise RefusedYamlError("an alias refers to a value it lies in", node)
        return counted[id(node)]
    counted[id(node)] = -1
    children = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else node.value
    total = 1 + sum(_count_values(child, counted) for child in children) if isinstance(node.value, list) else 1
    if total > MAX_YAML_VALUES:
        raise RefusedYamlError(f"aliases expand this to more than {MAX_YAML_VALUES} values", node)
    counted[id(node)] = total
    return total


def read_yaml_file(path: Path) -> dict[str, Any]:
    """Read one `--config` file; one that cannot be read, is not UTF-8 text, or is bad YAML, or
    YAML that no config is (see `_YamlLoader`) is a `ConfigError` naming the file."""
    try:
        text = path.read_bytes().decode("utf-8")
        data = yaml.load(text, Loader=_YamlLoader)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path}: is a folder, not a file") from None
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"--config {path}: not UTF-8 text (byte {error.object[error.start]:#04x} at line {line})"
        ) from None
    except RecursionError:
        raise ConfigError(f"--config {path}: nested too deeply") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"--config {path}: {_yaml_problem(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of config keys at the top level")
    return data


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What is wrong, and at which line: `duplicate key 'lr' at line 4`."""
    if isinstance(error, yaml.MarkedYAMLError):
        where = f" at line {error.problem_mark.line + 1}" if error.problem_mark is not None else ""
        return f"{error.problem or 'invalid YAML'}{where}"
    if isinstance(error, yaml.reader.ReaderError):  # a control character, NUL included
        return f"character U+{error.character:04X} at position {error.position} is not allowed in YAML"
    return "invalid YAML"


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
        except RefusedYamlError as error:
            raise ConfigError(f"--{key}: {error.problem}") from None
        except RecursionError:
            raise ConfigError(f"--{key}: nested too deeply") from None
        except yaml.YAMLError:
            value = raw  # not YAML: the text itself, which the config's validation judges
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
