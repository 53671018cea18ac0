"""The `check` command: everything `fit` needs, checked without training."""

from __future__ import annotations

import importlib.metadata
import itertools
import platform
import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import PROGRAM
from .config import Config
from .data.images import file_digest, find_undecodable, scan_images
from .errors import ConfigError, DataError
from .models.network import backbone_name
from .models.weights import initialise
from .task import DataModule, Model
from .trainers import check_trainer_settings

DISTRIBUTION = PROGRAM.replace("_", "-")


@dataclass
class CheckReport:
    """What `check` found: the environment, the data per split, and every problem (one line each)."""

    environment: list[tuple[str, str]] = field(default_factory=list)
    data_source: str = ""
    data_notes: list[str] = field(default_factory=list)
    """What reading the data found that is no problem (the data module's `notes`)."""
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check(config: Config) -> CheckReport:
    """Everything `fit` needs, checked without training: the software and hardware, the trainer
    settings on this machine, every file of `data.root` (each image decoded, each label read),
    with the label counts per split, classes missing from train/ and images shared between splits,
    and the model for those classes, with its first weights (`model.weights` or `model.pretrained`)."""
    problems: list[str] = []
    report = CheckReport(environment=_environment(problems), problems=problems)
    try:
        report.environment.append(("trainer", check_trainer_settings(config)))
    except ConfigError as error:
        report.problems.append(str(error))
    data = config.data
    if data.root is None:
        sizes = f"train {data.synthetic_train_size}, val {data.synthetic_val_size}, test {data.synthetic_test_size}"
        report.data_source = f"synthetic, generated in code from seed {config.seed} ({sizes} images)"
        _check_model(config, DataModule(data, seed=config.seed), report)
        return report
    report.data_source = str(data.root)
    try:
        datamodule = DataModule(data.model_copy(update={"bad_images": "skip"}), seed=config.seed)
    except DataError as error:
        # The layout or the labels are wrong, and said all at once; which images decode is still worth knowing.
        named = " ".join(error.problems)
        scan = scan_images(data.root)
        unreadable = {path: why for path, why in scan.unreadable.items() if str(path) not in named}
        others = [path for path in scan.files if str(path) not in named]
        report.problems += at_most_per_kind([*error.problems, *_undecodable(unreadable | find_undecodable(others))])
        return report
    except ConfigError as error:
        report.problems.append(str(error))
        return report
    report.data_source = datamodule.source
    report.problems += at_most_per_kind(_undecodable(datamodule.undecodable))
    report.data_notes = datamodule.notes
    report.label_counts = datamodule.label_counts()
    report.problems += [
        f"data.root: class {name} never occurs in the train split of {data.root}"
        for name, count in report.label_counts.get("train", {}).items()
        if count == 0 and not name.startswith("(")
    ]
    report.problems += at_most_per_kind(_duplicates_across_splits(datamodule.image_files()))
    _check_model(config, datamodule, report)
    return report


def _check_model(config: Config, datamodule: DataModule, report: CheckReport) -> None:
    """The model `fit` would build for the data's classes, loaded with the weights it would start
    from: a `model.*` key that does not fit them (class weights, a weights file) is a problem here."""
    try:
        model = Model(config, **datamodule.class_info)
        loaded = initialise(model.network, config.model.weights, config.model.pretrained, backbone_name(config.model))
    except ConfigError as error:
        report.problems.append(str(error))
        return
    parameters = sum(parameter.numel() for parameter in model.parameters())
    size = f"{type(model).__name__} on {backbone_name(config.model)}, {parameters / 1e6:.1f} M parameters"
    report.environment.append(("model", size))
    if loaded is not None:
        counts = f"{loaded.loaded} tensors loaded, {loaded.left_out} left out, {loaded.missing} missing"
        report.environment.append(("first weights", counts))


def _undecodable(files: dict[Path, str]) -> list[str]:
    return [f"data.root: {path} does not decode: {why}" for path, why in files.items()]


MAX_PER_KIND = 10
"""Lines `check` prints of one kind of problem (the same message about other files), then a count."""


def at_most_per_kind(problems: list[str]) -> list[str]:
    """`problems`, keeping `MAX_PER_KIND` of each kind, then one line saying how many more there are."""
    kinds: dict[str, list[str]] = defaultdict(list)
    for problem in problems:
        kinds[re.sub(r"\S*[/\\]\S*|\d+", "_", problem)].append(problem)
    kept: list[str] = []
    for same in kinds.values():
        kept += same[:MAX_PER_KIND]
        if len(same) > MAX_PER_KIND:
            kept.append(f"data.root: {len(same) - MAX_PER_KIND} more like the one above")
    return kept


def _environment(problems: list[str]) -> list[tuple[str, str]]:
    """Python, torch and its accelerators, and the installed version of each declared dependency."""
    cuda = torch.version.cuda
    rows = [
        ("python", platform.python_version()),
        ("platform", platform.platform()),
        ("torch build", f"CUDA {cuda}" if torch.version.cuda else "CPU only"),
    ]
    if torch.cuda.is_available():
        rows += [(f"cuda:{index}", torch.cuda.get_device_name(index)) for index in range(torch.cuda.device_count())]
    else:
        rows.append(("cuda", "not available"))
    if torch.backends.mps.is_available():
        rows.append(("mps", "available"))
    for name in _declared_dependencies():
        try:
            rows.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
            problems.append(f"dependency {name} is not installed (pip install -e .)")
    return rows


def _declared_dependencies() -> list[str]:
    """The names in `[project.dependencies]`: from the installed metadata, else from pyproject.toml."""
    try:
        requirements = [
            requirement
            for requirement in importlib.metadata.requires(DISTRIBUTION) or []
            if "extra ==" not in requirement
        ]
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        if not pyproject.is_file():
            return []
        requirements = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return [re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0] for requirement in requirements]


def _duplicates_across_splits(files: dict[str, list[Path]]) -> list[str]:
    """One line per picture that is in two splits (same bytes), which would leak into evaluation."""
    places: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for split, paths in files.items():
        for path in paths:
            places[file_digest(path)].append((split, path))
    problems = []
    for copies in places.values():
        for (split, path), (other_split, other) in itertools.combinations(copies, 2):
            if split != other_split:
                problems.append(f"data.root: {path} ({split}) and {other} ({other_split}) are the same image")
    return problems
