"""`pals sim` commands: models, run, calibrate (on a small copy of the data)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pals_core.cli import app
from pals_core.sim.calibration import calibration_dir

runner = CliRunner()


def test_models_lists_models_and_gpus() -> None:
    result = runner.invoke(app, ["sim", "models"])
    assert result.exit_code == 0, result.output
    for name in ("llama-3.1-8b", "qwen3-30b-a3b", "H100-SXM", "A100-SXM"):
        assert name in result.output


def test_run_prints_a_summary() -> None:
    result = runner.invoke(app, ["sim", "run", "--rate", "3", "--duration-s", "30"])
    assert result.exit_code == 0, result.output
    for figure in ("throughput", "tok/J", "ITL p50 / p99"):
        assert figure in result.output


def test_run_refuses_unknown_model_listing_known_ones() -> None:
    result = runner.invoke(app, ["sim", "run", "--model", "gpt-9", "--duration-s", "1"])
    assert result.exit_code == 2
    assert "llama-3.1-70b" in result.output


def test_calibrate_writes_json(tmp_path: Path) -> None:
    source = calibration_dir()
    if not (source / "batch_sweep.csv").is_file():
        reason = f"calibration data not found at {source} (set PALS_CALIBRATION_DIR)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    data = tmp_path / "cal"
    data.mkdir()
    with (source / "batch_sweep.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [
        r
        for r in rows
        if r["model"] == "meta-llama/Llama-3.1-8B-Instruct"
        and r["gpu"] == "H100"
        and r["batch_size"] in ("8", "64")
    ]
    with (data / "batch_sweep.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    (data / "cap_sweep.csv").write_text((source / "cap_sweep.csv").read_text())
    out = tmp_path / "cal.json"
    args = ["sim", "calibrate", "--data", str(data), "--json", str(out), "--seeds", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    points = summary["points"]
    assert len(points) == 2 * 3 + 6 * 2
    assert summary["max_abs_rel_error"] == max(abs(p["rel_error"]) for p in points)
    worst = max(abs(p["worst_seed_rel_error"]) for p in points)
    assert summary["max_abs_worst_seed_rel_error"] == worst
    for p in points:  # the seed mean and the worst seed, per point
        assert len(p["simulated_by_seed"]) == 2
        assert p["seed_mean"] == sum(p["simulated_by_seed"]) / 2
        assert abs(p["worst_seed_rel_error"]) >= abs(p["rel_error"]) - 1e-12
    assert "worst seed" in result.output


def test_sim_node_takes_vllms_max_num_seqs_flag_and_a_physics_variant() -> None:
    result = runner.invoke(app, ["sim-node", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--max-num-seqs" in result.output
    assert "--batch-limit" in result.output  # the old name still works
    assert "--physics" in result.output
