"""Stratified k-fold assignment for cross-validation (`fit --folds K`, `data.folds`).

A sample's fold is a pure function of (seed, the training samples' keys): the same data and seed
give the same folds in every run and every process, so each fold's fit finds its validation
samples by itself, and the cross-validation's folder stores the assignment only for people to read.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ConfigError


def stratified_folds(keys: Sequence[str], folds: int, seed: int) -> list[int]:
    """The fold (0 to `folds` - 1) of each sample, stratified by `keys` (its class, or for an image
    with several, the rarest one it holds).

    The samples of each key, shuffled by seed, are dealt to the folds in turn, and each key starts
    where the one before it left off: every key's samples spread over the folds within one of
    each other, and the folds' sizes differ by at most one."""
    if len(keys) < folds:
        raise ConfigError(f"data.folds: {folds} folds need at least {folds} training images, train/ has {len(keys)}")
    generator = torch.Generator().manual_seed(seed)
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    assignment = [0] * len(keys)
    dealt = 0
    for key in sorted(groups):
        members = groups[key]
        for position in torch.randperm(len(members), generator=generator).tolist():
            assignment[members[position]] = dealt % folds
            dealt += 1
    return assignment


def rarest_present(labels_per_sample: Sequence[Sequence[int]], names: Sequence[str]) -> list[str]:
    """Each sample's stratification key when it holds several classes (boxes, mask regions): the one
    that is rarest over all samples, so that rare classes reach every fold; `""` for one with none."""
    counts = [0] * len(names)
    for labels in labels_per_sample:
        for label in set(labels):
            counts[label] += 1
    return [
        names[min(set(labels), key=lambda label: (counts[label], label))] if labels else ""
        for labels in labels_per_sample
    ]
