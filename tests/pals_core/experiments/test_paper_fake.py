"""The experiment pipeline end to end on the fake node (no simulator, no PALS)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pals_core.experiments import paper, runner
from pals_core.experiments.plots import plot_dynamic_power, plot_efficiency_vs_load
from pals_core.experiments.scenarios import NodeConfig, quick_matrix
from tests.pals_core.experiments.fakes import build_fake_node


def test_pipeline_runs_baselines_and_oracle_and_writes_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "build_node", build_fake_node)
    monkeypatch.setattr(paper, "build_node", build_fake_node)
    matrix = replace(
        quick_matrix(),
        nodes=(NodeConfig("fake-model", "H100-SXM", 1),),
        load_fracs=(0.5,),
        static_duration_s=20.0,
        dynamic_duration_s=40.0,
        warmup_s=5.0,
        oracle_search_s=15.0,
        oracle_caps_frac=(0.5, 1.0),
        oracle_batches=(16, 256),
    )
    controllers = ("stock", "cap-only", "batch-only", "oracle-static")
    out = paper.run_paper(matrix, tmp_path, jobs=1, controllers=controllers)
    doc = json.loads(out.results_path.read_text())
    assert {"meta", "summary", "oracle", "runs"} <= set(doc)
    # 3 scenarios (none, static 70 %, dynamic) x 3 baselines + 2 oracle runs (not dynamic).
    assert len(doc["runs"]) == 11
    assert sorted(doc["oracle"]) == [
        "fake-model@1xH100-SXM/load-50%/none#seed1",
        "fake-model@1xH100-SXM/load-50%/static-70%#seed1",
    ]
    for pick in doc["oracle"].values():
        assert pick["batch_limit"] in (16, 256)
    static_oracle = next(
        r for r in doc["runs"] if r["controller"] == "oracle-static" and r["budget"] == "static-70%"
    )
    assert static_oracle["peak_power_w"] <= 0.7 * 700.0 + 1e-6
    assert "goals" in doc["summary"]
    series = json.loads((tmp_path / paper.SERIES_FILE).read_text())
    assert len(series) == 3  # the dynamic scenario, one per baseline
    plots = plot_efficiency_vs_load(doc["runs"], tmp_path) + plot_dynamic_power(series, tmp_path)
    assert len(plots) == 3 and all(p.stat().st_size > 1000 for p in plots)
