"""The experiment pipeline end to end on the fake node (no simulator, no PALS)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pals_core.cli import app
from pals_core.experiments import paper, runner
from pals_core.experiments.plots import plot_dynamic_power, plot_efficiency_vs_load, plot_pareto
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
        oracle_cap_step_w=250.0,
        static_front_span_w=250.0,
        profile_batches=(16, 256),
        seeds=(1, 2),
    )
    controllers = ("stock", "static-cap", "cap-only", "cap-latency", "batch-only", "oracle-static")
    out = paper.run_paper(matrix, tmp_path, jobs=1, controllers=controllers)
    doc = json.loads(out.results_path.read_text())
    assert {"meta", "summary", "oracle", "runs"} <= set(doc)
    # 2 seeds x 3 scenarios (none, static 60 %, dynamic) x 4 baselines + 2 searched
    # controllers on the 2 non-dynamic scenarios.
    assert len(doc["runs"]) == 2 * (3 * 4 + 2 * 2)
    assert sorted(doc["oracle"]) == [
        f"fake-model@1xH100-SXM/load-50%/{b}#{c}"
        for b in ("none", "static-60%")
        for c in ("oracle-static", "static-cap")
    ]
    for name, pick in doc["oracle"].items():
        assert pick["batch_limit"] in ((256,) if name.endswith("static-cap") else (16, 256))
    for r in doc["runs"]:
        if r["controller"] in ("oracle-static", "static-cap") and r["budget"] == "static-60%":
            assert r["peak_power_w"] <= 0.6 * 700.0 + 1e-6
    # The static cap's front: the grid's caps within 250 W of the picks, every seed, and under
    # a budget only the caps whose peak power fits it (as the picks).
    front = doc["static_front"]
    assert sorted(front) == [f"fake-model@1xH100-SXM/load-50%/{b}" for b in ("none", "static-60%")]
    for key, points in front.items():
        assert points and all(p["seeds"] == [1, 2] and len(p["tokens_per_j"]) == 2 for p in points)
        if key.endswith("static-60%"):
            assert all(max(p["peak_power_w"]) <= 0.6 * 700.0 for p in points)
    assert len(front["fake-model@1xH100-SXM/load-50%/none"]) >= 2
    picked = doc["oracle"]["fake-model@1xH100-SXM/load-50%/none#static-cap"]["cap_w"]
    assert picked in [p["cap_w"] for p in front["fake-model@1xH100-SXM/load-50%/none"]]
    assert "goals" in doc["summary"]
    series = json.loads((tmp_path / paper.SERIES_FILE).read_text())
    assert len(series) == 2 * 4  # the dynamic scenario, one per seed and running baseline
    plots = plot_efficiency_vs_load(doc["runs"], tmp_path) + plot_dynamic_power(series, tmp_path)
    plots += plot_pareto(doc["runs"], tmp_path, front)
    assert len(plots) == 2 + 1 + 1 and all(p.stat().st_size > 1000 for p in plots)
    # The saved run reads back as the tables of docs/results.md, and as the terminal report.
    for args in (["--markdown"], []):
        shown = CliRunner().invoke(app, ["experiment", "report", *args, str(out.results_path)])
        assert shown.exit_code == 0, shown.output
    assert "hindsight picks' own QoS excess over cap-only" in shown.output


def test_mismatched_devices_are_scenarios_of_their_own_with_their_own_search() -> None:
    matrix = replace(
        quick_matrix(seeds=2),
        mismatch_node=NodeConfig("fake-model", "H100-SXM", 1),
        mismatch_load_frac=0.7,
        mismatches=((0.8, 1.2),),
    )
    mismatched = [s for s in matrix.scenarios() if s.mismatched]
    assert len(mismatched) == 2 * 2  # 2 seeds x (unconstrained, 60 % budget)
    assert {s.key for s in mismatched} == {
        "fake-model@1xH100-SXM/load-70%/none/device-speed0.8-power1.2",
        "fake-model@1xH100-SXM/load-70%/static-60%/device-speed0.8-power1.2",
    }
    nominal = replace(mismatched[0], device_speed=1.0, device_power=1.0)
    assert nominal.search_key != mismatched[0].search_key and not nominal.mismatched


def test_a_variant_this_simulator_lacks_is_refused_naming_what_it_has() -> None:
    from pals_core.errors import ConfigurationError
    from pals_core.experiments.scenarios import variant_matrix

    assert variant_matrix(quick_matrix(), "tight-slo").slo == "tight"
    with pytest.raises(ConfigurationError, match="unknown variant 'nope'; allowed: pessimistic"):
        variant_matrix(quick_matrix(), "nope")


def test_only_nodes_keeps_the_named_nodes_and_refuses_unknown_ones() -> None:
    from pals_core.errors import ConfigurationError
    from pals_core.experiments.scenarios import full_matrix, only_nodes

    matrix = only_nodes(full_matrix(), ["qwen3-30b-a3b@2xH100-SXM"])
    assert [n.key for n in matrix.nodes] == ["qwen3-30b-a3b@2xH100-SXM"]
    assert matrix.mismatch_node is None  # its node (8B) is not among them
    with pytest.raises(ConfigurationError, match=r"unknown node.*allowed: llama-3\.1-8b"):
        only_nodes(full_matrix(), ["nope"])
