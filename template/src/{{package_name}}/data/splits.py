"""What every task's data module shares: train / val / test splits of `DataConfig`, their loaders,
and the data order that makes a resumed fit continue exactly where it stopped."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..config import DataConfig
from ..errors import ConfigError
from .folds import stratified_folds
from .images import find_undecodable

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
SampleKey = tuple[int, int]
"""(index into the data set, seed of that sample's random augmentation)."""


class SizedDataset(Protocol[T_co]):
    """A map-style data set that knows its size: every one here does, torch's `Dataset` type does not say so."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> T_co: ...


class EpochSampler(Sampler[SampleKey]):
    """One process's share of an epoch: the order, and every sample's augmentation seed, follow from
    (seed, epoch) alone.

    So the same epoch is the same data whatever the number of workers, and a resumed fit replays
    the interrupted epoch from the next unseen batch (`start_at`). With several processes (DDP)
    each takes every `world_size`-th key, the epoch padded to a multiple of `world_size` as
    PyTorch's DistributedSampler does. Lightning calls `set_epoch` before each epoch.
    """

    def __init__(self, size: int, seed: int, shuffle: bool, rank: int = 0, world_size: int = 1) -> None:
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def start_at(self, epoch: int, skip: int) -> None:
        """The next iteration is `epoch` without its first `skip` keys of this process."""
        self.epoch = epoch
        self.skip = skip

    def __len__(self) -> int:
        return math.ceil(self.size / self.world_size)

    def __iter__(self) -> Iterator[SampleKey]:
        order, seeds = self._draw()
        keys = list(zip(order.tolist(), seeds[order].tolist(), strict=True))[self.skip :]
        self.skip = 0
        return iter(keys)

    def indices(self) -> list[int]:
        """The data set indices of this process's share of the current epoch, in order."""
        order, _ = self._draw()
        indices: list[int] = order.tolist()
        return indices

    def _draw(self) -> tuple[Tensor, Tensor]:
        """This process's order, and the seeds of all samples, of the current epoch."""
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * (self.epoch + 1))
        order = torch.randperm(self.size, generator=generator) if self.shuffle else torch.arange(self.size)
        seeds = torch.randint(0, 2**62, (self.size,), generator=generator)
        padding = len(self) * self.world_size - self.size
        return torch.cat([order, order[:padding]])[self.rank :: self.world_size], seeds


class SeededSamples(Dataset[T]):
    """Draws each sample under its own seed (from `EpochSampler`), so its random augmentation does
    not depend on which worker loads it, on prefetching, or on where a resumed fit started."""

    def __init__(self, dataset: SizedDataset[T]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey) -> T:
        index, seed = key
        generator = torch.default_generator  # what torchvision's random transforms draw from
        state = generator.get_state()
        generator.manual_seed(seed)  # the CPU generator alone: torch.manual_seed costs 100x more
        try:
            return self.dataset[index]
        finally:
            generator.set_state(state)


class SplitDataModule(LightningDataModule):
    """Loaders over `self.datasets`, which the task's `setup` fills: `train`, `val` and optionally `test`.

    Each task's module also provides `image_files` (the images of `data.root` per split) and
    `label_counts` (per split, what each class has: images, boxes or masks), for `check`.

    `collate_fn` makes a batch of samples; None stacks them (PyTorch's default). Checkpoints keep
    how far training got in the current epoch (`state_dict`), so a fit resumed from a checkpoint
    written mid-epoch trains the rest of that epoch on the very batches it would have seen.
    """

    def __init__(self, config: DataConfig, seed: int, collate_fn: Callable[[Sequence[Any]], Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.collate_fn = collate_fn
        self.datasets: dict[str, SizedDataset[Any]] = {}
        self._resume_at: tuple[int, int] | None = None
        """(epoch, batches of it already trained) for the first training loader of a resumed fit."""
        self.undecodable: dict[Path, str] = {}
        """Images of `data.root` that do not decode, with the reason; left out (`data.bad_images: skip`)."""
        self.notes: list[str] = []
        """What reading `data.root` found that is no problem but worth a look (the format read, say),
        one line each: `check` prints them under the data source."""

    @property
    def source(self) -> str:
        """What `check` names as the data read, once `data.root` is: the folder."""
        return str(self.config.root)

    @property
    def has_test_split(self) -> bool:
        return self.config.root is None or (self.config.root / "test").is_dir()

    @property
    def synthetic_sizes(self) -> dict[str, int]:
        return {
            "train": self.config.synthetic_train_size,
            "val": self.config.synthetic_val_size,
            "test": self.config.synthetic_test_size,
        }

    def find_undecodable(self, images: Iterable[Path], unreadable: Mapping[Path, str] | None = None) -> set[Path]:
        """Decode every image once, before any training, so that a broken file is named now and not
        halfway through an epoch: a `ConfigError`, or with `data.bad_images: skip` the files to leave
        out (also kept in `undecodable`). Nothing is decoded with `data.bad_images: unchecked`.

        `unreadable` are the entries named like images that are none (`ImageScan.unreadable`): they
        count as images that do not decode, unchecked or not, as `check` reports them."""
        if self.config.bad_images == "unchecked":
            self.undecodable = dict(unreadable or {})
        else:
            self.undecodable = {**(unreadable or {}), **find_undecodable(images)}
        if self.undecodable and self.config.bad_images != "skip":
            path, problem = next(iter(self.undecodable.items()))
            more = f" (and {len(self.undecodable) - 1} more; `check` lists them)" if len(self.undecodable) > 1 else ""
            raise ConfigError(
                f"data.root: {path} does not decode: {problem}{more}; data.bad_images: skip trains without such files"
            )
        return set(self.undecodable)

    def split_train(self, train_view: Dataset[Any], eval_view: Dataset[Any], size: int) -> None:
        """Validate on `data.val_fraction` of train/ when there is no val/, or with `data.folds` on
        fold `data.fold` of train/ (`folds.stratified_folds` of `fold_keys`).

        The two views hold the same samples with the training and the evaluation transforms; the
        split depends on the seed (and the samples' keys) only, so it is the same in every run.
        """
        if self.config.folds is None:
            order = torch.randperm(size, generator=torch.Generator().manual_seed(self.seed)).tolist()
            val_count = max(1, round(size * self.config.val_fraction))
            train, val = order[val_count:], order[:val_count]
        else:
            assignment = self.fold_assignment()
            train = [index for index, fold in enumerate(assignment) if fold != self.config.fold]
            val = [index for index, fold in enumerate(assignment) if fold == self.config.fold]
        self.datasets["train"] = Subset(train_view, train)
        self.datasets["val"] = Subset(eval_view, val)

    def fold_assignment(self) -> list[int]:
        """The fold of each training sample, with `data.folds` set."""
        folds = self.config.folds
        assert folds is not None
        if self.config.fold >= folds:
            raise ConfigError(f"data.fold: {self.config.fold} is not a fold of data.folds {folds} (0 to {folds - 1})")
        return stratified_folds(self.fold_keys(), folds, self.seed)

    def fold_keys(self) -> list[str]:
        """What cross-validation stratifies the training samples by, in their order (each task's module)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Where training stands when a checkpoint is written: the epoch, its batches trained, and
        whether that epoch is over.

        Lightning's count of processed batches (optimizer step done) is the current batch's index + 1
        at a step's end, where checkpoints are written, and one fewer when its SLURM requeue handler
        saves in the middle of a step (`hpc_ckpt_<n>.ckpt`): its loop then resumes at that batch, and
        so must the data."""
        trainer = self.trainer
        if trainer is None:
            return {}
        trained = int(trainer.fit_loop.epoch_loop.batch_progress.current.state_dict()["processed"])
        return {
            "epoch": trainer.current_epoch,
            "batches_trained": trained,
            "epoch_done": trained >= trainer.num_training_batches,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict:
            epoch, trained = state_dict["epoch"], state_dict["batches_trained"]
            self._resume_at = (epoch + 1, 0) if state_dict["epoch_done"] else (epoch, trained)

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled by seed; a last batch of one image is left out of each epoch (`lone_last_image`)."""
        loader = self._loader("train", shuffle=True)
        if self._resume_at is not None:
            epoch, trained = self._resume_at
            assert isinstance(loader.sampler, EpochSampler)
            loader.sampler.start_at(epoch, trained * self.config.batch_size)
            self._resume_at = None
        return loader

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        if "test" not in self.datasets:
            raise ConfigError(f"data.root: {self.config.root} has no test/ split to test on")
        return self._loader("test", shuffle=False)

    def _loader(self, split: str, shuffle: bool) -> DataLoader[Any]:
        """A loader whose order and augmentation come from the seed only (`EpochSampler`), and
        which leaves the global random number generator alone (its own `generator`)."""
        dataset = self.datasets[split]
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        options = (
            loader_options(self.config, trainer.num_devices, trainer.strategy.root_device.type == "cuda")
            if trainer is not None
            else loader_options(self.config)
        )
        sampler = EpochSampler(len(dataset), self.seed, shuffle, rank, world_size)
        training = split == "train"
        if training and len(sampler) < 2 <= self.config.batch_size:
            field = "data.synthetic_train_size" if self.config.root is None else "data.root"
            raise ConfigError(
                f"{field}: {len(dataset)} training image(s) for {world_size} process(es); training takes "
                "at least 2 per process (BatchNorm cannot train on a batch of one)"
            )
        return DataLoader(
            SeededSamples(dataset),
            batch_size=self.config.batch_size,
            sampler=sampler,
            drop_last=training and lone_last_image(len(sampler), self.config.batch_size),
            collate_fn=self.collate_fn,
            generator=torch.Generator().manual_seed(self.seed),
            **options,
        )


def lone_last_image(samples: int, batch_size: int) -> bool:
    """Whether an epoch of `samples` ends in a batch of one image, which training leaves out.

    BatchNorm cannot train on one image ("Expected more than 1 value per channel"), whatever the
    task. Only that batch is dropped, not every short one (torchvision's detection and
    segmentation references drop all): the epoch loses one image, a different one each epoch as
    the order is shuffled, and a data set smaller than a batch still trains.
    """
    return batch_size > 1 and samples % batch_size == 1


MAX_AUTO_WORKERS = 8
"""More loader processes per device rarely help and each holds a copy of the data set's state."""


def loader_options(config: DataConfig, processes: int = 1, cuda: bool | None = None) -> dict[str, Any]:
    """`num_workers`, `persistent_workers` and `pin_memory` for a loader, `auto` resolved for
    `processes` loading side by side on this machine (one per device) and a CUDA device or not
    (None: whether this machine has one)."""
    if config.num_workers == "auto":
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = max(1, min(MAX_AUTO_WORKERS, cpus // processes))
    else:
        workers = config.num_workers
    if config.pin_memory == "auto":
        pin_memory = torch.cuda.is_available() if cuda is None else cuda
    else:
        pin_memory = config.pin_memory
    persistent = config.persistent_workers and workers > 0
    return {"num_workers": workers, "persistent_workers": persistent, "pin_memory": pin_memory}
