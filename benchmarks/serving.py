"""Benchmark: the `serve` command under load, against `inference.py` called in a plain loop.

For each task (default: classification) it renders the default project, trains it for one short
epoch (the weights don't matter here, the work per image does), and sends CLIENTS concurrent
clients x REQUESTS requests each (a 640 x 480 JPEG per request, each client on its own keep-alive
connection) to a real server process on localhost:
- batching off (`--max-batch-size 1`) and on (`--max-batch-size 8 --max-wait-ms 5`);
and, in one process without HTTP, the same images decoded and predicted by `inference.py`
- one image per call (what a plain loop does), and in batches of 8 (the machine's limit).
It prints throughput, client-side p50 / p99 latency, failed requests and the server's resident
memory once ready and after the load. Bounded: it stops by itself. A benchmark, not a test: exits 0.
`python benchmarks/serving.py detection segmentation` runs those tasks.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from projects import TASKS, fill, project_env, render, run_code

CLIENTS, REQUESTS = 8, 25
SHORT_FIT = ["--data.synthetic_train_size", "32", "--data.synthetic_val_size", "8", "--data.synthetic_test_size", "8"]
SHORT_FIT += ["--trainer.max_epochs", "1", "--callbacks.progress_bar", "false", "--data.num_workers", "0"]

LOOP = """
import io, statistics, time
from pathlib import Path
from vision_project.data.images import read_rgb
from vision_project.inference import load_model

model = load_model(CHECKPOINT, "cpu")
images = [path.read_bytes() for path in sorted(Path(IMAGES).iterdir())]
total = TOTAL
for batch in (1, 8):
    model.predict([read_rgb(io.BytesIO(images[0]))] * batch)  # warm-up
    latencies = []
    started = time.perf_counter()
    for start in range(0, total, batch):
        begun = time.perf_counter()
        chunk = [images[index % len(images)] for index in range(start, start + batch)]
        model.predict([read_rgb(io.BytesIO(data)) for data in chunk])
        latencies += [time.perf_counter() - begun] * batch
    seconds = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"{batch} {total / seconds} {statistics.median(latencies)} {p99}")
"""


def photos(folder: Path, count: int = 8) -> Path:
    """Photo-sized JPEGs of smooth noise (about 60 kB each): decoding them costs what a photo's does."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(0)
    for index in range(count):
        coarse = generator.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        picture = Image.fromarray(coarse).resize((640, 480), Image.Resampling.BICUBIC)
        picture.save(folder / f"{index}.jpg", quality=90)
    return folder


def resident_mb(pid: int) -> float:
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert found is not None, "no VmRSS line: not Linux?"
    return int(found[1]) / 1024


def serve(project: Path, checkpoint: Path, images: Path, *options: str) -> str:
    log = project / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "vision_project", "serve", "--checkpoint", str(checkpoint), "--port", "0", *options],
            cwd=project, env=project_env(project), stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = _ready(process, log)
        before = resident_mb(process.pid)
        bodies = [path.read_bytes() for path in sorted(images.iterdir())]

        def client(index: int) -> list[tuple[int, float]]:
            results = []
            with httpx.Client(base_url=url, timeout=60) as http:
                for request in range(REQUESTS):
                    body = bodies[(index + request) % len(bodies)]
                    begun = time.perf_counter()
                    status = http.post("/predict", content=body, headers={"Content-Type": "image/jpeg"}).status_code
                    results.append((status, time.perf_counter() - begun))
            return results

        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = [result for chunk in pool.map(client, range(CLIENTS)) for result in chunk]
        seconds = time.perf_counter() - started
        after = resident_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    latencies = sorted(latency for _, latency in results)
    failed = sum(status != 200 for status, _ in results)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    return (
        f"{len(results) / seconds:6.1f} images/s, p50 {1000 * statistics.median(latencies):6.1f} ms, "
        f"p99 {1000 * p99:6.1f} ms, failed {failed}/{len(results)}, resident {before:.0f} -> {after:.0f} MB"
    )


def _ready(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = re.search(r"on (http://[\d.]+:\d+)/", log.read_text(errors="replace"))
        if found:
            try:
                if httpx.get(f"{found[1]}/health").status_code == 200:
                    return found[1]
            except httpx.TransportError:
                pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(log.read_text(errors="replace")[-3000:])


def main(tasks: list[str]) -> None:
    for task in tasks:
        project = render(task, "bench-serving")
        images = photos(project / "photos")
        fit = subprocess.run(
            [sys.executable, "-m", "vision_project", "fit", *SHORT_FIT, "--output_dir", str(project / "runs")],
            cwd=project, env=project_env(project), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if fit.returncode != 0:
            print(f"== {task}: the fit failed\n{fit.stderr[-3000:]}")
            continue
        checkpoint = next((project / "runs").glob("*/checkpoints/last.ckpt"))
        print(f"== {task} ({os.cpu_count()} cpu cores, {CLIENTS} clients x {REQUESTS} requests, 640x480 JPEGs)")
        print(f"server, batching off: {serve(project, checkpoint, images, '--max-batch-size', '1')}")
        batching = serve(project, checkpoint, images, "--max-batch-size", "8", "--max-wait-ms", "5")
        print(f"server, batching on:  {batching}")
        values = {"CHECKPOINT": repr(str(checkpoint)), "IMAGES": repr(str(images)), "TOTAL": str(CLIENTS * REQUESTS)}
        loop = run_code(project, fill(LOOP, task, **values))
        if loop.returncode != 0:
            print(f"loop failed:\n{loop.stderr[-3000:]}")
            continue
        for line in loop.stdout.split("\n"):
            if line.strip():
                batch, speed, p50, p99 = line.split()
                print(
                    f"inference.py loop, {batch} per call: {float(speed):6.1f} images/s, "
                    f"p50 {1000 * float(p50):6.1f} ms, p99 {1000 * float(p99):6.1f} ms (no HTTP)"
                )


if __name__ == "__main__":
    unknown = set(sys.argv[1:]) - set(TASKS)
    if unknown:
        sys.exit(f"serving.py: unknown task {sorted(unknown)[0]}; one of {', '.join(TASKS)}")
    main(sys.argv[1:] or ["classification"])
