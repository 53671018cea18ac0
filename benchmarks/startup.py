"""Benchmark: how fast the rendered project's command line answers, against importing torch.

Renders the default project and times, in fresh interpreters, `python -c "import torch"`,
`vision_project --help` and `vision_project fit --help` (as `python -m vision_project`), each the
median of several runs after one warm-up. Goal: the help under a quarter of the torch import.
A benchmark, not a test: it prints figures and exits 0.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from projects import project_env, render

RUNS = 9


def median_seconds(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    project = render("classification", "bench-startup")
    env = project_env(project)
    python = [sys.executable]
    torch_import = median_seconds([*python, "-c", "import torch"], project, env)
    nothing = median_seconds([*python, "-c", "pass"], project, env)
    print(f"== command-line start-up ({os.cpu_count()} cpu cores, median of {RUNS} runs)")
    print(f"python -c pass:          {nothing * 1000:6.0f} ms")
    print(f"python -c 'import torch': {torch_import * 1000:6.0f} ms")
    for arguments in (["--help"], ["fit", "--help"]):
        seconds = median_seconds([*python, "-m", "vision_project", *arguments], project, env)
        verdict = "met" if seconds <= torch_import / 4 else "NOT met"
        print(
            f"vision_project {' '.join(arguments):<11} {seconds * 1000:6.0f} ms = {seconds / torch_import:.2f} x the "
            f"torch import (goal <= 0.25: {verdict})"
        )


if __name__ == "__main__":
    main()
