"""The tables the command line prints: metrics, `check`'s findings, the export's parity gate, a study's trials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the commands' modules import torch: only once a command runs
    from .checking import CheckReport
    from .export import Parity
    from .fold_results import Spread
    from .study_results import StudyResults


def print_check(console: Console, report: CheckReport) -> None:
    """The environment, where the data comes from and what reading it noted, labels per class and split."""
    environment = Table(title="environment", show_header=False)
    for name, value in report.environment:
        environment.add_row(name, value)
    console.print(environment)
    console.print(f"data: {report.data_source}", highlight=False, soft_wrap=True)
    for note in report.data_notes:
        console.print(f"  {note}", highlight=False, soft_wrap=True)
    if report.label_counts:
        splits = list(report.label_counts)
        counts = Table(title="labels per split")
        counts.add_column("class")
        for split in splits:
            counts.add_column(split, justify="right")
        for name in report.label_counts[splits[0]]:
            counts.add_row(name, *(str(report.label_counts[split].get(name, 0)) for split in splits))
        console.print(counts)
    if not report.problems:
        console.print("No problems found.")


def metrics_table(title: str, metrics: dict[str, float]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    return table


def parity_table(parity: Parity) -> Table:
    table = Table(title=f"parity gate: {parity.file_format} ({parity.exporter}, {parity.export_seconds:.1f} s)")
    table.add_column("check")
    table.add_column("exported vs eager", justify="right")
    table.add_column("passed")
    table.add_row(parity.file_check, "valid", "yes")
    table.add_row(
        f"outputs on {parity.batch_size} validation images",
        f"max |diff| {parity.output_max_abs_diff:.2e}",
        "yes" if parity.outputs_match else "NO",
    )
    table.add_row(
        f"{parity.metric} on the validation split",
        f"{parity.exported_metric:.4f} vs {parity.eager_metric:.4f} ({100 * parity.metric_relative_diff:.2f} % apart)",
        "yes" if parity.metric_matches else "NO",
    )
    return table


def trials_table(results: StudyResults) -> Table:
    """One row per trial: its number, state, drawn values and metric, the best one marked."""
    keys = sorted({key for row in results.rows for key in row.params})
    table = Table(title=f"trials of {results.folder.name}")
    for column in ("trial", "state", *keys, results.monitor):
        table.add_column(column, justify="right" if column != "state" else "left")
    for row in results.rows:
        values = [f"{value:.4g}" if isinstance(value, float) else str(value) for value in map(row.params.get, keys)]
        metric = f"{row.value:.4f}" if row.value is not None else row.state.lower()
        best = results.best is not None and row.number == results.best.number
        table.add_row(f"{row.number}{' *' if best else ''}", row.state.lower(), *values, metric)
    return table


def converted_table(images: Mapping[str, int]) -> Table:
    """Images written per split by `convert`."""
    table = Table(title="converted")
    table.add_column("split")
    table.add_column("images", justify="right")
    for split, count in images.items():
        table.add_row(split, str(count))
    return table


def folds_table(title: str, spreads: Mapping[str, Spread]) -> Table:
    """A cross-validation's metrics: mean +- standard deviation, then each fold's value."""
    folds = len(next(iter(spreads.values())).values)
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("mean ± std", justify="right")
    for fold in range(folds):
        table.add_column(f"fold {fold}", justify="right")
    for name, spread in spreads.items():
        mean = "-" if spread.mean is None else f"{spread.mean:.4f}"
        std = "" if spread.std is None else f" ± {spread.std:.4f}"
        table.add_row(name, mean + std, *("-" if value is None else f"{value:.4f}" for value in spread.values))
    return table
