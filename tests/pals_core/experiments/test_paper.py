"""``pals experiment paper`` on the real simulator, on a matrix smaller than ``--quick``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from pals_core.cli import app
from pals_core.experiments import scenarios
from pals_core.experiments.schema import RESULTS_SCHEMA


@pytest.fixture
def tiny_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    quick = scenarios.quick_matrix

    def tiny(seeds: int = 1, physics: str = "nominal", slo: str = "relaxed") -> scenarios.Matrix:
        return replace(
            quick(seeds, physics, slo),
            nodes=(scenarios.DENSE_SMALL,),
            load_fracs=(0.6,),
            static_duration_s=30.0,
            dynamic_duration_s=90.0,
            warmup_s=10.0,
            oracle_search_s=20.0,
            oracle_cap_step_w=200.0,
            profile_caps_frac=(0.4, 0.7, 1.0),
            profile_batches=(8, 64, 256),
            profile_warmup_s=2.0,
            profile_window_s=4.0,
        )

    monkeypatch.setattr(scenarios, "quick_matrix", tiny)


@pytest.mark.slow
def test_paper_command_writes_results_summary_and_plots(tiny_matrix: None, tmp_path: Path) -> None:
    out = tmp_path / "paper"
    result = CliRunner().invoke(
        app, ["experiment", "paper", "--output", str(out), "--quick", "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "efficiency_vs_oracle_matched_qos_min" in result.output and "wall time" in result.output
    doc = json.loads((out / "results.json").read_text())
    jsonschema.validate(doc, RESULTS_SCHEMA)
    controllers = {r["controller"] for r in doc["runs"]}
    assert controllers == set(scenarios.CONTROLLERS)
    # none + static-60% get all seven; dynamic five (no fixed configuration can follow it).
    assert len(doc["runs"]) == 7 + 7 + 5
    dynamic = [r for r in doc["runs"] if r["budget_kind"] == "dynamic"]
    assert all(r["budget_falls"] >= 1 for r in dynamic)
    stock = next(r for r in doc["runs"] if r["controller"] == "stock" and r["budget"] == "none")
    assert stock["fixed_config"] is None and stock["budget_time_over_frac"] is None
    assert stock["stock_batch"] == 1024  # vLLM's default on an 80 GB H100
    assert (stock["itl_slo_s"], stock["ttft_slo_s"]) == (0.1, 2.0)  # MLPerf llama3_1-8b Server
    assert 0.3 * stock["offered_tok_s"] < stock["throughput_tok_s"] < 1.5 * stock["offered_tok_s"]
    assert len(list((out / "profiles").glob("llama-3.1-8b@1xH100-SXM-nominal-*.json"))) == 1
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "tokj_vs_load_none.png" in pngs and any(p.startswith("power_") for p in pngs)
    assert any(p.startswith("pareto_") for p in pngs)
