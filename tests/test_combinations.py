"""The combinations come from copier.yml alone, and reach both pytest and the template's CI matrix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.combinations import COPIER_YML, SELECT_ENV, choices, combo_id, github_matrix, rendered, trained

from .conftest import ROOT, run, tool


@pytest.fixture
def scratch_copier_yml(tmp_path: Path) -> Path:
    """copier.yml with one more logger and one more CI service, as a contributor would add them."""
    data = yaml.safe_load(COPIER_YML.read_text())
    data["logger"]["choices"]["Neptune"] = "neptune"
    data["ci"]["choices"]["Bitbucket Pipelines"] = "bitbucket"
    path = tmp_path / "copier.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_new_choice_reaches_every_list_without_another_edit(scratch_copier_yml: Path) -> None:
    assert "neptune" not in choices("logger")
    assert {"classification-neptune", "segmentation-neptune"} <= {combo_id(a) for a in trained(scratch_copier_yml)}
    matrix = github_matrix(scratch_copier_yml)["include"]
    assert len(matrix) == len(choices("task")) * (len(choices("logger")) + 1)
    assert {"task": "detection", "logger": "neptune", "combo": "detection-neptune"} in matrix
    every = rendered(scratch_copier_yml)
    counts = [len(choices(q)) + (q in ("logger", "ci")) for q in ("task", "logger", "ci", "docker")]
    assert len(every) == counts[0] * counts[1] * counts[2] * counts[3]
    assert any(answers["logger"] == "neptune" and answers["ci"] == "bitbucket" for answers in every)


def test_the_matrix_command_prints_the_trained_combinations() -> None:
    output = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "combinations.py")], capture_output=True, text=True, check=True
    ).stdout
    matrix = json.loads(output)
    assert [entry["combo"] for entry in matrix["include"]] == [combo_id(answers) for answers in trained()]


def test_a_selection_names_known_combinations_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SELECT_ENV, "detection-csv")
    assert trained() == [{"task": "detection", "logger": "csv"}]
    monkeypatch.setenv(SELECT_ENV, "detection-neptune")
    with pytest.raises(ValueError, match="unknown combinations"):
        trained()


def test_the_template_workflow_uses_the_matrix_command() -> None:
    path = ROOT / ".github" / "workflows" / "template.yml"
    run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)], cwd=ROOT)
    workflow = yaml.safe_load(path.read_text())
    assert "python scripts/combinations.py" in workflow["jobs"]["combinations"]["steps"][-1]["run"]
    trained_job = workflow["jobs"]["trained"]
    assert trained_job["strategy"]["matrix"] == "${{ fromJSON(needs.combinations.outputs.matrix) }}"
    assert trained_job["steps"][-1]["env"]["COPIER_LIGHTNING_COMBOS"] == "${{ matrix.combo }}"
