"""Benchmark: render the default project and time `fit` with no arguments; prints the figures.

The goal (issue 2): validation accuracy >= 0.95 within 5 minutes on a 2-core CPU. This is a
benchmark, not a test: it reports numbers and exits 0 either way, so slow machines don't fail CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import copier

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    project = ROOT / "build" / "bench"
    shutil.rmtree(project, ignore_errors=True)
    copier.run_copy(str(ROOT), project, defaults=True, quiet=True, vcs_ref="HEAD")
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    command = [sys.executable, "-m", "vision_project", "fit", "--callbacks.progress_bar", "false"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    run_dir = project / result.stdout.strip().splitlines()[-1].removeprefix("Run directory: ")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"cpu cores:        {os.cpu_count()}")
    print(f"wall time (fit):  {seconds:.1f} s (goal: <= 300 s)")
    print(f"val_acc:          {metrics['val']['val_acc']:.4f} (goal: >= 0.95)")
    print(f"test_acc:         {metrics['test']['test_acc']:.4f}")
    print(f"run directory:    {run_dir}")


if __name__ == "__main__":
    main()
