"""Cross-validation, `fit --folds K`: K fits in one folder, each validated on one stratified fold
of train/ and trained on the others (`data.folds`, `data.fold`; `data.folds.stratified_folds`).

The folder, `<output_dir>/crossval-<date>-<time>/`, holds the config every fold shares
(`config.yaml`), which images make each fold (`folds.json`, for people to read: each fold's fit
draws its own from the seed and the data), one run directory per fold (`fold-<i>/`) and, once
every fold has finished, `report/` (`fold_results.py`). Run again with `--resume`, it continues
the folds not yet finished: a fold with a checkpoint from where it stopped, one without any anew.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .callbacks import LAST_CHECKPOINT
from .config import Config
from .errors import ConfigError
from .files import write_atomic

if TYPE_CHECKING:
    from .fold_results import FoldResults
    from .task import DataModule

FOLDER_PREFIX = "crossval-"
FOLDS_FILE = "folds.json"


def cross_validate(config: Config, folds: int, resume: Path | None = None) -> FoldResults:
    """Fit every fold not yet finished, then write the report; returns what it holds."""
    from . import runner
    from .fold_results import write_report
    from .task import DataModule

    trainer = config.trainer
    if trainer.num_nodes != 1 or trainer.devices not in (1, "1", "auto") or trainer.strategy != "auto":
        raise ConfigError("trainer.devices: cross-validation fits its folds one after another, each on one device")
    if trainer.devices == "auto":
        config = config.model_copy(update={"trainer": trainer.model_copy(update={"devices": 1})})
    if resume is None:
        parent = _new_folder(config.output_dir)
        record = _folds_record(DataModule(_fold_config(config, folds, 0).data, seed=config.seed), folds)
        write_atomic(parent / "config.yaml", config.to_yaml())
        write_atomic(parent / FOLDS_FILE, _folds_json(record))
    else:
        parent = resume
        record = json.loads((parent / FOLDS_FILE).read_text(encoding="utf-8"))
        if record["folds"] != folds:
            raise ConfigError(f"--folds {folds}: the cross-validation in {parent} has {record['folds']} folds")
    for fold in range(folds):
        if fold in record["finished"]:
            continue
        run = parent / f"fold-{fold}"
        last = run / "checkpoints" / LAST_CHECKPOINT
        print(f"fold {fold} of {folds}{' (resumed)' if last.is_file() else ''}: {run}", flush=True)
        if last.is_file():
            runner.fit(_fold_config(config, folds, fold), resume=last)
        else:
            shutil.rmtree(run, ignore_errors=True)  # a fold stopped before its first checkpoint starts again
            runner.fit(_fold_config(config, folds, fold), into=run)
        record["finished"].append(fold)
        write_atomic(parent / FOLDS_FILE, _folds_json(record))
    return write_report(parent)


def resumed_parent(given: str, output_dir: Path) -> Path:
    """The cross-validation folder `fit --folds K --resume` names: a path, or `last`, the newest in `output_dir`."""
    if given == "last":
        found = sorted(output_dir.glob(f"{FOLDER_PREFIX}*/{FOLDS_FILE}")) if output_dir.is_dir() else []
        if not found:
            raise ConfigError(f"--resume last: no cross-validation in output_dir {output_dir} to resume")
        return found[-1].parent
    parent = Path(given).expanduser()
    if not (parent / FOLDS_FILE).is_file():
        raise ConfigError(f"--resume {given}: not a cross-validation folder (it has no {FOLDS_FILE})")
    return parent


def parent_config(parent: Path) -> dict[str, Any]:
    """The config the folds share, the base of a resumed cross-validation's config."""
    data: dict[str, Any] = yaml.safe_load((parent / "config.yaml").read_text(encoding="utf-8"))
    return data


def _fold_config(config: Config, folds: int, fold: int) -> Config:
    data = config.data.model_copy(update={"folds": folds, "fold": fold})
    return Config.from_data(config.model_copy(update={"data": data}).to_data())


def _folds_record(datamodule: DataModule, folds: int) -> dict[str, Any]:
    """What `folds.json` starts as: each training sample's fold (in train/'s order), each fold's
    samples per stratification key, and the folds finished so far (none)."""
    assignment, keys = datamodule.fold_assignment(), datamodule.fold_keys()
    per_fold: list[dict[str, int]] = [{} for _ in range(folds)]
    for fold, key in zip(assignment, keys, strict=True):
        per_fold[fold][key or "(none)"] = per_fold[fold].get(key or "(none)", 0) + 1
    return {
        "folds": folds,
        "seed": datamodule.seed,
        "sizes": [assignment.count(fold) for fold in range(folds)],
        "per_key": [dict(sorted(counts.items())) for counts in per_fold],
        "finished": [],
        "assignment": assignment,
    }


def _folds_json(record: dict[str, Any]) -> str:
    """`folds.json`'s text: indented, but the assignment (a number per training image) on one line."""
    text = json.dumps({key: value for key, value in record.items() if key != "assignment"}, indent=2)
    return f'{text[:-2]},\n  "assignment": {json.dumps(record["assignment"])}\n}}\n'


def _new_folder(output_dir: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    output_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        parent = output_dir / f"{FOLDER_PREFIX}{stamp}{f'-{attempt}' if attempt else ''}"
        try:
            parent.mkdir()
        except FileExistsError:
            continue
        return parent
    raise ConfigError(f"output_dir: {output_dir} has no free name for a cross-validation folder")
