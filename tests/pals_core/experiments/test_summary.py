from __future__ import annotations

from typing import Any

import pytest

from pals_core.experiments.summary import summarize


def run(
    scenario: str,
    kind: str,
    controller: str,
    seed: int,
    tokj: float,
    violated: int = 0,
    over: float | None = None,
    settling: list[float] | None = None,
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "budget_kind": kind,
        "controller": controller,
        "seed": seed,
        "tokens_per_j": tokj,
        "qos_violated": violated,
        "qos_violated_frac": violated / 20,
        "budget_time_over_frac": over,
        "budget_energy_over_frac": None if over is None else over / 10,
        "settling_s": settling or [],
        "settling_all_s": [*(settling or []), 0.0],
    }


def test_summary_pairs_seeds_and_takes_worst_and_mean() -> None:
    runs = [
        run("a/none", "none", "stock", 1, 1.0),
        run("a/none", "none", "pals", 1, 1.3),
        run("a/none", "none", "stock", 2, 2.0),
        run("a/none", "none", "pals", 2, 2.2),  # gains 0.3 and 0.1: mean 0.2
        run("b/none", "none", "stock", 1, 1.0),
        run("b/none", "none", "pals", 1, 1.0),  # gain 0
        run("a/none", "none", "oracle-static", 1, 1.3),
        run("a/none", "none", "oracle-static", 2, 2.0),  # ratios 1.0 and 1.1
        run("a/s60", "static", "pals", 1, 1.0, violated=2, over=0.002, settling=[0.4]),
        run("a/s60", "static", "cap-only", 1, 1.0, violated=20, over=0.0),
        run("a/s60", "static", "oracle-static", 1, 1.25),  # ratio 0.8: the worst
        run("a/dyn", "dynamic", "pals", 1, 1.0, violated=0, over=0.004, settling=[1.5, 0.2]),
        run("a/dyn", "dynamic", "cap-only", 1, 1.0, violated=9),
        run("b/s60", "static", "pals", 1, 1.0),
        run("b/s60", "static", "cap-only", 1, 1.0),  # no violation anywhere: left out
    ]
    s = summarize(runs)
    assert s["efficiency_gain_vs_stock_by_scenario"]["a/none"] == pytest.approx(0.2)
    assert s["efficiency_gain_vs_stock_max"] == pytest.approx(0.2)
    assert s["efficiency_gain_vs_stock_mean"] == pytest.approx(0.1)
    assert s["efficiency_vs_oracle_min"] == pytest.approx(0.8)
    assert s["qos_violation_ratio_by_scenario"] == {"a/dyn": 9.0, "a/s60": 10.0}
    assert s["qos_violation_ratio_cap_only_over_pals_min"] == 9.0
    assert s["qos_violation_ratio_pals_zero_scenarios"] == ["a/dyn"]
    assert s["qos_violation_both_zero_scenarios"] == ["b/s60"]
    assert s["budget_time_over_frac_max"] == pytest.approx(0.004)
    assert s["budget_energy_over_frac_max"] == pytest.approx(0.0004)
    assert s["settling_binding_steps"] == 3 and s["settling_s_max"] == 1.5
    assert s["pals_qos_violation_frac_max"] == pytest.approx(0.1)
    goals = s["goals"]
    assert goals["efficiency_vs_oracle_min"]["met"] is False
    assert goals["settling_s_p95"]["met"] is True
    assert goals["budget_time_over_frac_max"]["met"] is True
    assert goals["qos_violation_ratio_cap_only_over_pals_min"]["met"] is True


def test_missing_controllers_give_no_figure_and_unmet_goals() -> None:
    s = summarize([run("a/none", "none", "stock", 1, 1.0)])
    assert s["efficiency_gain_vs_stock_max"] is None
    assert s["goals"]["efficiency_gain_vs_stock_max"]["met"] is False
