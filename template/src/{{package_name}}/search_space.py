"""What `tune` searches: the search space (`tune.space`) checked against the config before anything
runs, each key's value drawn for a trial, and the sampler and pruner the config names."""

from __future__ import annotations

import json
from typing import Any

import optuna

from .config import Choices, Config, Distribution, FloatRange, IntRange
from .config_sources import load_config
from .errors import ConfigError


def check_space(config: Config) -> None:
    """Refuse, in one line naming the key, a search `tune` cannot run: a key that is not a config key
    (or is one of `tune`'s own), a value drawn from a range that its key's validation refuses, a
    range with `low` above `high` or a log scale through zero, a grid over a range without a
    `step`, or a trial on more than one device."""
    space = config.tune.space
    if not space:
        raise ConfigError("tune.space: empty; name at least one config key to search, e.g. optim.lr")
    for key, distribution in space.items():
        where = f"tune.space.{key}"
        if key.split(".", 1)[0] == "tune":
            raise ConfigError(f"{where}: the search's own settings are not searched")
        if not isinstance(distribution, Choices):
            if distribution.low > distribution.high:
                raise ConfigError(f"{where}: low {distribution.low} is above high {distribution.high}")
            if distribution.log and distribution.low <= 0:
                raise ConfigError(f"{where}: a log scale needs low > 0 (got {distribution.low})")
            if isinstance(distribution, FloatRange) and distribution.log and distribution.step is not None:
                raise ConfigError(f"{where}: give log or step, not both")
            if config.tune.sampler == "grid" and isinstance(distribution, FloatRange) and distribution.step is None:
                raise ConfigError(f"{where}: tune.sampler grid needs a step for a float range, or choices")
        for value in _extremes(distribution):
            try:
                load_config(overrides=[(key, value)], base=config.to_data())
            except ConfigError as error:
                raise ConfigError(f"{where}: {json.dumps(value)} is not a value of it ({error})") from None
    trainer = config.trainer
    if trainer.num_nodes != 1 or trainer.devices not in (1, "1", "auto") or trainer.strategy not in ("auto",):
        raise ConfigError(
            "trainer.devices: a tune trial runs on one device; start one tune worker per device instead "
            "(README: Search hyper-parameters)"
        )


def suggest(trial: optuna.Trial, key: str, distribution: Distribution) -> Any:
    if isinstance(distribution, Choices):
        return trial.suggest_categorical(key, distribution.choices)
    if isinstance(distribution, IntRange):
        return trial.suggest_int(key, distribution.low, distribution.high, step=distribution.step, log=distribution.log)
    return trial.suggest_float(key, distribution.low, distribution.high, step=distribution.step, log=distribution.log)


def _extremes(distribution: Distribution) -> list[Any]:
    """The values whose validity stands for the whole distribution's."""
    return list(distribution.choices) if isinstance(distribution, Choices) else [distribution.low, distribution.high]


def sampler(config: Config, trials_so_far: int) -> optuna.samplers.BaseSampler:
    settings = config.tune
    seed = settings.seed if settings.seed is not None else config.seed + trials_so_far
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        return optuna.samplers.GridSampler({key: _grid(d) for key, d in settings.space.items()}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _grid(distribution: Distribution) -> list[Any]:
    if isinstance(distribution, Choices):
        return list(distribution.choices)
    assert distribution.step is not None  # check_space refuses a float range without one
    count = round((distribution.high - distribution.low) / distribution.step) + 1
    return [distribution.low + index * distribution.step for index in range(count)]


def pruner(config: Config) -> optuna.pruners.BasePruner:
    settings = config.tune
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.prune_after_trials)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=config.trainer.max_epochs)
    return optuna.pruners.NopPruner()
