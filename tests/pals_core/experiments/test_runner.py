from __future__ import annotations

import pytest

from pals_core.experiments import runner
from pals_core.experiments.scenarios import NodeConfig, Scenario
from tests.pals_core.experiments.fakes import build_fake_node

NODE = NodeConfig("fake-model", "H100-SXM", 2)


@pytest.fixture(autouse=True)
def fake_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "build_node", build_fake_node)


def test_stock_ignores_a_budget_and_is_measured_over_it() -> None:
    scenario = Scenario(NODE, 0.8, "static", 0.4, 1, duration_s=20.0, warmup_s=5.0)
    result = runner.run_scenario(scenario, "stock")
    assert result.budget_time_over_frac is not None and result.budget_time_over_frac > 0.5
    assert result.qos_windows == 3  # 5 s windows from the 5 s warm-up to 20 s
    assert result.tokens_per_j > 0 and result.throughput_tok_s > 0
    assert result.mean_power_w > 0.4 * 1400


def test_cap_only_keeps_the_budget_on_the_fake_node() -> None:
    scenario = Scenario(NODE, 0.8, "static", 0.4, 1, duration_s=20.0, warmup_s=5.0)
    result = runner.run_scenario(scenario, "cap-only", keep_series=True)
    assert result.budget_time_over_frac == 0.0
    assert result.peak_power_w <= 0.4 * 1400 + 1e-6
    assert result.series is not None and len(result.series["time_s"]) == 20
    unconstrained = runner.run_scenario(scenario.unconstrained(), "cap-only")
    assert unconstrained.budget_time_over_frac is None and unconstrained.budget_falls == 0


def test_window_itl_p99s_are_kept_on_request_and_never_stored() -> None:
    scenario = Scenario(NODE, 0.8, "none", None, 1, duration_s=20.0, warmup_s=5.0)
    assert runner.run_scenario(scenario, "stock").window_itl_p99_s is None
    result = runner.run_scenario(scenario, "stock", keep_windows=True)
    assert (
        result.window_itl_p99_s is not None and len(result.window_itl_p99_s) == result.qos_windows
    )
    assert result.window_qos is not None and len(result.window_qos) == result.qos_windows
    assert sum(w.violated for w in result.window_qos) == result.qos_violated
    stored = result.to_dict(with_series=True)
    assert "window_itl_p99_s" not in stored and "window_qos" not in stored
