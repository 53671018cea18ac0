"""Known noise from Lightning and torch, silenced where it starts: each filter names one
message (or one logger) and says why it is noise here. Everything else still reaches the user.

Called where a Trainer is built and where a command starts, not at import: pytest restores the
warning filters after each test, so filters set once at import would not hold in a test session.
"""

from __future__ import annotations

import logging
import warnings

IGNORED_WARNINGS = (
    # Lightning's own pytree helper calls an API torch deprecates; nothing a project can change.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # A resumed fit continues in its run directory, and SplitDataModule restores the position in the
    # epoch itself (its state_dict), which Lightning's check for resumable loaders does not look at.
    r"Checkpoint directory .* exists and is not empty",
    r"You're resuming from a checkpoint that ended before the epoch ended",
    # `ckpt_path="best"` takes the first ModelCheckpoint, which build_callbacks makes the monitored one.
    r'`.(validate|test)\(ckpt_path="best"\)` is called with Trainer configured',
    # torch.export.save of weights loaded from a checkpoint: the saved program loads back exact
    # (export's parity gate checks it).
    r"No complete tensor found in the group",
)
"""Message patterns of warnings that say nothing a user of this project can act on."""


IGNORED_INFO = (
    # Lightning 2.6 advertises its cloud logger on every Trainer that has another logger.
    "💡 Tip:",
    # On every Trainer; `check` lists the accelerators, and this machine has no TPU to speak of.
    "TPU available:",
    # The schedule's length is read from the loader's length, on every fit.
    "Loading `train_dataloader` to estimate number of stepping batches",
    # Two lines each time the best checkpoint is validated or tested after a fit (`metrics.json`
    # names it), twice, as validation and test each load it; a resumed fit says "Restored all
    # states from the checkpoint at ..." instead.
    "Restoring states from the checkpoint path at ",
    "Loaded model weights from the checkpoint at ",
)
"""Beginnings of Lightning's INFO lines that tell the user nothing they asked for or can act on;
a `tune` study would print them for every trial."""


class _DropKnownInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(IGNORED_INFO)


_INFO_FILTER = _DropKnownInfo()


def silence_known_noise() -> None:
    for message in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if _INFO_FILTER not in logger.filters:
            logger.addFilter(_INFO_FILTER)
