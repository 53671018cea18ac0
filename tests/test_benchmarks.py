"""`benchmarks/gpu.py` needs a GPU that CI machines lack; its `--cpu` mode runs every line of it on
the CPU with small sizes, so that it still works the day a GPU is at hand. One task runs here, the
detector (the one that compiles its backbone alone): the script's code is the same for every task,
and each project's own `test_speed.py` compiles its network."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.trained
TASKS = ("detection",)


def test_the_gpu_benchmark_runs_on_the_cpu() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu.py", "--cpu", *TASKS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    headers = "|".join(TASKS)  # default_fit.py's own headers carry the core count: "== detection (2 cpu cores)"
    pattern = rf"^== ({headers})\n(.*?)(?=^== (?:{headers})\n|\Z)"
    sections = dict(re.findall(pattern, result.stdout, flags=re.MULTILINE | re.DOTALL))
    assert set(sections) == set(TASKS), result.stdout
    for task, text in sections.items():
        for mode in ("off", "on "):
            assert re.search(
                rf"^compile {mode}: lightning +\d+\.\d images/s, plain +\d+\.\d images/s, ratio=\d", text, re.M
            ), f"{task}:\n{text}"
        assert len(re.findall(r"^final val_\w+: \d\.\d{4}", text, re.M)) == 2, f"{task}:\n{text}"
