"""What a `tune` study found, written into its folder when the study ends (or on `tune --summary`):
`trials.csv` (one row per trial), `best.yaml` (the best trial's config: `fit --config best.yaml`
trains it again) and Optuna's pictures of the search (history, parameter importances, parallel
coordinates), which also go to the project's logger, in a run of the study's own."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from matplotlib import pyplot
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from optuna.trial import TrialState
from optuna.visualization import matplotlib as plots
from torch import Tensor

from .config import Config
from .figures import csv_text, render_figure
from .files import write_atomic
from .loggers import build_logger, log_image
from .tuning import study_folder, trial_run_name

log = logging.getLogger(__name__)

PICTURES: dict[str, Callable[..., Axes]] = {
    "history": plots.plot_optimization_history,
    "importances": plots.plot_param_importances,
    "parallel_coordinates": plots.plot_parallel_coordinate,
}
"""The pictures of a study, by file name; each needs complete trials (importances: two, with
parameters that differ), and is left out, with a log line, while the study has too few."""


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    note: str
    """Why it was pruned or failed; empty for a complete trial."""


@dataclass(frozen=True)
class StudyResults:
    folder: Path
    monitor: str
    rows: list[TrialRow]
    best: TrialRow | None
    files: list[Path]
    """What was written: trials.csv, best.yaml (with a complete trial), the pictures."""


def summarize(study: optuna.Study, config: Config) -> StudyResults:
    """Write the study's results into its folder and send its pictures to the logger."""
    folder = study_folder(config)
    monitor = config.callbacks.monitor
    rows = [
        TrialRow(
            number=trial.number,
            state=trial.state.name,
            params=dict(trial.params),
            value=trial.value if trial.state == TrialState.COMPLETE else None,
            note=str(trial.user_attrs.get("reason", "")),
        )
        for trial in study.get_trials(deepcopy=False)
    ]
    keys = list(config.tune.space)
    table = [[row.number, row.state, *(row.params.get(key) for key in keys), row.value, row.note] for row in rows]
    write_atomic(folder / "trials.csv", csv_text(["number", "state", *keys, monitor, "note"], table))
    files = [folder / "trials.csv"]
    complete = [row for row in rows if row.value is not None and math.isfinite(row.value)]
    best = None
    if complete:
        best_trial = study.best_trial
        best = next(row for row in complete if row.number == best_trial.number)
        trained = folder / trial_run_name(best.number) / "config.yaml"
        if trained.is_file():
            write_atomic(folder / "best.yaml", trained.read_text(encoding="utf-8"))
            files.append(folder / "best.yaml")
        else:  # a trial added to the study through Optuna's API, not run by `tune`
            log.warning("study %s: the best trial, %d, has no %s; no best.yaml", study.study_name, best.number, trained)
    pictures = _pictures(study, monitor)
    for name, (png, _) in pictures.items():
        write_atomic(folder / f"{name}.png", png)
        files.append(folder / f"{name}.png")
    if pictures:
        _log_pictures(config, folder, pictures, step=len(rows))
    return StudyResults(folder=folder, monitor=monitor, rows=rows, best=best, files=files)


def _pictures(study: optuna.Study, target: str) -> dict[str, tuple[bytes, Tensor]]:
    """Optuna's matplotlib pictures of the study, as PNG files' bytes and as pixels for the logger."""
    pictures: dict[str, tuple[bytes, Tensor]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # few trials: "importances will be equal", as drawn
        for name, plot in PICTURES.items():
            try:
                axes = plot(study, target_name=target)
            except (ValueError, RuntimeError) as error:  # too few complete trials for this picture
                log.info("study %s: no %s picture yet (%s)", study.study_name, name, error)
                continue
            figure = axes.figure
            assert isinstance(figure, Figure)  # Optuna draws on a figure of its own
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            pictures[name] = render_figure(figure)
            pyplot.close(figure)
    return pictures


def _log_pictures(config: Config, folder: Path, pictures: dict[str, tuple[bytes, Tensor]], step: int) -> None:
    """The pictures in the logger, in a run of the study's folder (where the logger nests runs, the trials' parent)."""
    logger = build_logger(config, folder)
    for name, (_, pixels) in pictures.items():
        log_image(logger, f"study/{name}", pixels, step)
    logger.finalize("success")
