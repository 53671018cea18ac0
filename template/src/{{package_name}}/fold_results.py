"""What a cross-validation found (`crossval.py`), written to its `report/` once every fold has
finished: the mean and standard deviation over the folds of every metric (`metrics.csv`) and of
every per-class number (`per_class.csv`), both in `summary.json`, and `folds.png`, each metric's
value in each fold beside their mean and spread.

The standard deviation is the sample one (n - 1): the folds are a sample of the splits the data
allows. A class that a fold's validation images lack has no number there; its mean is over the
folds that have one."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from .figures import csv_text, render_figure
from .files import write_atomic

SPLITS = ("val", "test")


@dataclass(frozen=True)
class Spread:
    values: list[float | None]
    """One per fold; None where the fold has no such number."""

    @property
    def known(self) -> list[float]:
        return [value for value in self.values if value is not None and not math.isnan(value)]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.known) if self.known else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.known) if len(self.known) > 1 else None


@dataclass(frozen=True)
class FoldResults:
    folder: Path
    metrics: dict[str, dict[str, Spread]]
    """Split -> metric -> its values over the folds."""
    per_class: dict[str, dict[str, dict[str, Spread]]]
    """Split -> class -> column (as in each fold's per_class.csv) -> its values over the folds."""

    @property
    def folds(self) -> int:
        return len(next(iter(next(iter(self.metrics.values())).values())).values)


def summary(parent: Path) -> FoldResults:
    """The folds' numbers, read from each fold's `metrics.json`."""
    runs = sorted(parent.glob("fold-*"), key=lambda run: int(run.name.removeprefix("fold-")))
    folds = [json.loads((run / "metrics.json").read_text(encoding="utf-8")) for run in runs]
    metrics: dict[str, dict[str, Spread]] = {}
    per_class: dict[str, dict[str, dict[str, Spread]]] = {}
    for split in SPLITS:
        names = _keys(fold.get(split, {}) for fold in folds)
        if names:
            metrics[split] = {name: Spread([fold.get(split, {}).get(name) for fold in folds]) for name in names}
        tables = [fold.get(f"{split}_per_class", {}) for fold in folds]
        classes = _keys(tables)
        if classes:
            per_class[split] = {
                name: {
                    column: Spread([table.get(name, {}).get(column) for table in tables])
                    for column in _keys(table.get(name, {}) for table in tables)
                }
                for name in classes
            }
    return FoldResults(parent, metrics, per_class)


def write_report(parent: Path) -> FoldResults:
    """Write `report/` of the cross-validation in `parent`; returns what it holds."""
    results = summary(parent)
    fold_columns = [f"fold {fold}" for fold in range(results.folds)]
    rows = [
        [split, name, spread.mean, spread.std, *spread.values]
        for split, spreads in results.metrics.items()
        for name, spread in spreads.items()
    ]
    class_rows = [
        [split, name, column, spread.mean, spread.std, *spread.values]
        for split, classes in results.per_class.items()
        for name, columns in classes.items()
        for column, spread in columns.items()
    ]
    files: dict[str, str | bytes] = {
        "metrics.csv": csv_text(["split", "metric", "mean", "std", *fold_columns], rows),
        "per_class.csv": csv_text(["split", "class", "column", "mean", "std", *fold_columns], class_rows),
        "summary.json": json.dumps(_as_data(results), indent=2) + "\n",
        "folds.png": render_figure(_spread_figure(results.metrics, results.folds))[0],
    }
    report = parent / "report"
    report.mkdir(exist_ok=True)
    for name, content in files.items():
        write_atomic(report / name, content)
    return results


def _keys(tables: Any) -> list[str]:
    """The keys of several tables, in the order they first appear."""
    return list(dict.fromkeys(key for table in tables for key in table))


def _as_data(results: FoldResults) -> dict[str, Any]:
    def entry(spread: Spread) -> dict[str, Any]:
        return {"mean": spread.mean, "std": spread.std, "folds": spread.values}

    data: dict[str, Any] = {
        split: {name: entry(spread) for name, spread in spreads.items()} for split, spreads in results.metrics.items()
    }
    for split, classes in results.per_class.items():
        data[f"{split}_per_class"] = {
            name: {column: entry(spread) for column, spread in columns.items()} for name, columns in classes.items()
        }
    return data


def _spread_figure(metrics: dict[str, dict[str, Spread]], folds: int) -> Figure:
    """One panel per split and metric (each on its own scale): the value in each fold (dots) and
    their mean +- std (a bar beside them)."""
    columns = max(len(spreads) for spreads in metrics.values())
    figure = Figure(figsize=(2.2 * columns, 2.4 * len(metrics)))
    for row, spreads in enumerate(metrics.values()):
        for column, (name, spread) in enumerate(spreads.items(), start=1):
            axes = figure.add_subplot(len(metrics), columns, row * columns + column)
            axes.scatter([0.0] * len(spread.known), spread.known, s=18, color="tab:blue", alpha=0.7)
            if spread.mean is not None:
                axes.errorbar(0.4, spread.mean, yerr=spread.std or 0.0, fmt="o", color="black", capsize=4)
            axes.set_xlim(-0.5, 0.9)
            axes.set_xticks([0.0, 0.4], ["folds", "mean"], fontsize=7)
            axes.tick_params(axis="y", labelsize=7)
            axes.set_title(name, fontsize=8)
            axes.grid(axis="y", alpha=0.3)
    figure.suptitle(f"{folds} folds", fontsize=9)
    figure.tight_layout()
    return figure
