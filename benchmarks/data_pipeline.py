"""Benchmark: how fast each task's data pipeline delivers training batches, and whether the default
`data.num_workers` keeps ahead of the model.

For each task it renders the default project and, in one process, measures
- per worker: images/s of the training loader with `num_workers 0` and one thread, which is what
  one worker process does (decode or draw, augment, collate), for the synthetic data set and for the
  same kind of data read from disk in the task's real format (ImageFolder PNGs, COCO JSON + PNGs,
  image + mask PNGs, written here at the default image size);
- the loader alone with the default `num_workers` (what `auto` resolves to on this machine);
- the model: images/s of training steps (forward, backward, optimizer step) on one batch held in
  memory, with the default thread count;
- and a real epoch slice through the plain training loop with the default loader, counting the time
  each step waited for its batch.
The goal is a loader at least 3x faster than the model with the default workers, and no step
waiting for data. A benchmark, not a test: it exits 0. `python benchmarks/data_pipeline.py
detection` runs one task.
"""

from __future__ import annotations

import sys

from projects import TASKS, fill, output_or_error, render, run_code

MEASURE = """
import os
import tempfile
import time
from pathlib import Path

import torch

from vision_project.config import Config
from vision_project.data.datamodule import DATAMODULE
from vision_project.data.splits import loader_options
from vision_project.models.MODULE import MODEL
from vision_project.models.optimization import Schedule, configure_optimization
from tests import sample_data

DISK_IMAGES = 512
BATCHES = 12


def loader_speed(config, workers, threads):
    torch.set_num_threads(threads)
    data = config.data.model_copy(update={"num_workers": workers})
    datamodule = DATAMODULE(data, seed=config.seed)
    datamodule.setup("fit")
    batches = iter(datamodule.train_dataloader())
    next(batches)  # workers started, first batch out of the way
    start = time.perf_counter()
    for _ in range(BATCHES):
        next(batches)
    seconds = time.perf_counter() - start
    del batches
    return BATCHES * data.batch_size / seconds


def loss_of(model, batch):
    LOSS


def model_speed(config):
    torch.set_num_threads(DEFAULT_THREADS)
    datamodule = DATAMODULE(config.data.model_copy(update={"num_workers": 0}), seed=config.seed)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    model = MODEL(config, **datamodule.class_info)
    model.train()
    schedule = Schedule(100, warmup_steps=0, cosine=True)
    optimizer = configure_optimization(*model.backbone_and_head(), config.optim, schedule)["optimizer"]
    times = []
    for step in range(7):
        start = time.perf_counter()
        loss = loss_of(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()
        if step >= 2:
            times.append(time.perf_counter() - start)
    return config.data.batch_size / (sum(times) / len(times)), model


def data_wait(config, model):
    \"\"\"Training steps through the default loader: the share of the time spent waiting for batches.\"\"\"
    torch.set_num_threads(DEFAULT_THREADS)
    datamodule = DATAMODULE(config.data, seed=config.seed)
    datamodule.setup("fit")
    schedule = Schedule(100, warmup_steps=0, cosine=True)
    optimizer = configure_optimization(*model.backbone_and_head(), config.optim, schedule)["optimizer"]
    batches = iter(datamodule.train_dataloader())
    next(batches)
    waited = total = 0.0
    for _ in range(BATCHES):
        start = time.perf_counter()
        batch = next(batches)
        got = time.perf_counter()
        loss = loss_of(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()
        waited += got - start
        total += time.perf_counter() - start
    return waited / total


DEFAULT_THREADS = torch.get_num_threads()
config = Config()
workers = loader_options(config.data)["num_workers"]
with tempfile.TemporaryDirectory() as folder:
    root = (WRITE)(Path(folder), config.data.image_size)
    disk = config.model_copy(update={"data": config.data.model_copy(update={"root": root})})
    figures = {
        "synthetic": (loader_speed(config, 0, 1), loader_speed(config, workers, DEFAULT_THREADS)),
        "on disk": (loader_speed(disk, 0, 1), loader_speed(disk, workers, DEFAULT_THREADS)),
    }
model_images, model = model_speed(config)
wait = data_wait(config, model)
print(f"cpu cores: {os.cpu_count()}, threads: {DEFAULT_THREADS}, default num_workers: {workers}")
print(f"model: {model_images:.0f} images/s (training steps, batch {config.data.batch_size})")
for source, (one_worker, default) in figures.items():
    print(
        f"{source:9} loader: {one_worker:6.0f} images/s per worker, {default:6.0f} with {workers} workers"
        f" = {default / model_images:.1f}x the model"
    )
print(f"steps through the default synthetic loader waited for data {100 * wait:.1f} % of the time")
"""

WRITERS = {  # a data set of DISK_IMAGES training images in the task's format, at the default size
    "classification": "lambda root, size: sample_data.write_image_folder("
    "root, {'train': DISK_IMAGES // 4, 'val': 4}, image_size=size)",
    "detection": "lambda root, size: [sample_data.write_coco_split(root / split, count, seed, size)"
    " for seed, (split, count) in enumerate({'train': DISK_IMAGES, 'val': 8}.items())] and root",
    "segmentation": "lambda root, size: [sample_data.write_mask_split(root / split, count, seed, size)"
    " for seed, (split, count) in enumerate({'train': DISK_IMAGES, 'val': 8}.items())] and root",
}


def bench(task: str) -> None:
    project = render(task, "bench-data")
    result = run_code(project, fill(MEASURE, task, WRITE=WRITERS[task]), with_tests=True)
    print(f"== {task}")
    print(output_or_error(result))


def main() -> None:
    for task in sys.argv[1:] or TASKS:
        bench(task)


if __name__ == "__main__":
    main()
