from __future__ import annotations

from typing import Any

import pytest

from pals_core.experiments.markdown import matched_qos_markdown, static_front_markdown
from pals_core.experiments.stats import estimate
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
    windows: int = 100,
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "budget_kind": kind,
        "controller": controller,
        "seed": seed,
        "tokens_per_j": tokj,
        "qos_windows": windows,
        "qos_violated": violated,
        "qos_violated_frac": violated / windows,
        "budget_time_over_frac": over,
        "budget_energy_over_frac": None if over is None else over / 10,
        "settling_s": settling or [],
        "settling_all_s": [*(settling or []), 0.0],
    }


def test_estimate_is_the_mean_with_a_student_t_interval() -> None:
    e = estimate([1.0, 2.0, 3.0])
    assert e.mean == 2.0 and e.n == 3
    assert (e.low, e.high) == pytest.approx((2.0 - 2.4842, 2.0 + 2.4842), abs=1e-3)
    single = estimate([5.0])
    assert single.mean == 5.0 and single.n == 1


def test_matched_qos_efficiency_counts_only_where_the_reference_meets_qos() -> None:
    runs = [
        # a: both meet QoS (1 of 200 windows for PALS: 0.5 %): ratios 1.1 and 1.3 -> 1.2.
        run("a/none", "none", "pals", 1, 1.1, violated=1),
        run("a/none", "none", "pals", 2, 2.6),
        run("a/none", "none", "oracle-static", 1, 1.0),
        run("a/none", "none", "oracle-static", 2, 2.0),
        # b: PALS misses QoS (3 %) where the oracle meets it: 0, whatever its tok/J.
        run("b/none", "none", "pals", 1, 9.0, violated=3),
        run("b/none", "none", "oracle-static", 1, 1.0),
        # c: the oracle misses QoS itself: not comparable.
        run("c/none", "none", "pals", 1, 1.0),
        run("c/none", "none", "oracle-static", 1, 2.0, violated=5),
    ]
    s = summarize(runs)
    by = s["efficiency_vs_oracle_matched_qos_by_scenario"]
    assert by["a/none"]["mean"] == pytest.approx(1.2) and by["a/none"]["n"] == 2
    assert by["b/none"]["mean"] == 0.0 and by["b/none"]["pals_meets"] is False
    assert s["efficiency_vs_oracle_not_comparable"] == ["c/none"]
    assert s["efficiency_vs_oracle_matched_qos_min"] == 0.0
    assert s["efficiency_vs_oracle_matched_qos_worst_scenario"] == "b/none"
    assert s["goals"]["efficiency_vs_oracle_matched_qos_min"]["met"] is False


def test_qos_budgets_gains_and_decomposition() -> None:
    runs = [
        run("a/none", "none", "stock", 1, 1.0),
        run("a/none", "none", "static-cap", 1, 2.0),
        run("a/none", "none", "oracle-static", 1, 2.5),
        run("a/none", "none", "pals", 1, 3.0),
        run("a/s60", "static", "pals", 1, 1.0, violated=2, over=0.002, settling=[0.4]),
        run("a/s60", "static", "cap-only", 1, 1.0, violated=5, over=0.0),
        run("a/dyn", "dynamic", "pals", 1, 1.0, violated=4, over=0.004, settling=[1.5, 0.2]),
        run("a/dyn", "dynamic", "cap-only", 1, 1.0, violated=1),
        run("a/dyn", "dynamic", "batch-only", 1, 0.5, over=0.3),
    ]
    s = summarize(runs)
    assert s["qos_excess_windows_vs_cap_only_by_scenario"] == {"a/dyn": 3, "a/s60": -3}
    assert s["qos_excess_windows_vs_cap_only_max"] == 3
    assert s["pals_qos_violation_frac"] == pytest.approx(6 / 300)
    assert s["budget_time_over_frac_max"] == pytest.approx(0.004)
    assert s["budget_energy_over_frac_max"] == pytest.approx(0.0004)
    assert s["binding_falls"] == 3 and s["settling_s_max"] == 1.5
    assert s["efficiency_gain_vs_stock_max"] == pytest.approx(2.0)
    assert s["efficiency_gain_vs_static_cap_mean"] == pytest.approx(0.5)
    d = s["decomposition_by_scenario"]["a/none"]
    assert (d["gain_static_cap"], d["gain_batch"], d["gain_dynamics"]) == pytest.approx(
        (1.0, 0.25, 0.2)
    )
    assert s["batch_only_infeasible_runs"] == ["a/dyn#seed1"]
    goals = s["goals"]
    assert goals["qos_excess_windows_vs_cap_only_max"]["met"] is False
    assert goals["binding_falls"]["met"] is False  # 3 < 100
    assert goals["settling_s_p95"]["met"] is True


def test_missing_controllers_give_no_figure_and_unmet_goals() -> None:
    s = summarize([run("a/none", "none", "stock", 1, 1.0)])
    assert s["efficiency_gain_vs_stock_max"] is None
    assert s["efficiency_vs_oracle_matched_qos_min"] is None
    assert s["goals"]["efficiency_vs_oracle_matched_qos_min"]["met"] is False


def test_the_hindsight_picks_own_qos_excess_over_cap_only_is_reported() -> None:
    runs = [
        # s60: the static cap violates 1 window more than cap-only, within the 1 % budget.
        run("a/s60", "static", "cap-only", 1, 1.0, violated=0),
        run("a/s60", "static", "static-cap", 1, 2.0, violated=1),
        run("a/s60", "static", "oracle-static", 1, 2.5, violated=0),
        # s45: both picks violate 4 more than cap-only, over the budget.
        run("a/s45", "static", "cap-only", 1, 1.0, violated=2),
        run("a/s45", "static", "static-cap", 1, 2.0, violated=6),
        run("a/s45", "static", "oracle-static", 1, 2.0, violated=6),
        run("a/dyn", "dynamic", "cap-only", 1, 1.0, violated=9),  # no pick on a dynamic trace
    ]
    refs = summarize(runs)["qos_excess_windows_vs_cap_only_of_references"]
    assert refs["static-cap"]["by_scenario"] == {"a/s45": 4, "a/s60": 1}
    assert (refs["static-cap"]["max"], refs["static-cap"]["scenarios"]) == (4, 2)
    assert refs["static-cap"]["scenarios_over_cap_only"] == 2
    assert refs["static-cap"]["scenarios_over_cap_only_meeting_qos"] == 1
    assert refs["oracle-static"]["scenarios_over_cap_only"] == 1
    assert refs["oracle-static"]["scenarios_over_cap_only_meeting_qos"] == 0


def test_the_matched_qos_table_shows_what_each_side_spent() -> None:
    runs = [
        # a: PALS meets QoS (0 windows) at 0.9 of the static cap.
        run("a/none", "none", "pals", 1, 0.9),
        run("a/none", "none", "static-cap", 1, 1.0),
        # b: PALS misses (3 of 100) for 1.2x the static cap's tok/J; the static cap has 1.
        run("b/none", "none", "pals", 1, 1.2, violated=3),
        run("b/none", "none", "static-cap", 1, 1.0, violated=1),
    ]
    s = summarize(runs)
    by = s["efficiency_vs_static_cap_matched_qos_by_scenario"]
    assert by["b/none"]["mean"] == 0.0 and by["b/none"]["unmatched_mean"] == pytest.approx(1.2)
    assert (by["b/none"]["pals_violated"], by["b/none"]["reference_violated"]) == (3, 1)
    assert by["a/none"]["mean"] == pytest.approx(0.9) and by["a/none"]["pals_violated"] == 0
    table = matched_qos_markdown(s).splitlines()
    assert table[2].startswith("| a/none | 0.900 (- .. -) | 0 / 0 of 100 | 0.900 |")
    assert table[3] == "| b/none | 0 (PALS misses QoS) | 3 / 1 of 100 | 1.200 |"


def _point(cap: float, violated: list[int], tokj: list[float]) -> dict[str, Any]:
    return {
        "cap_w": cap,
        "seeds": [1, 2],
        "qos_violated": violated,
        "qos_windows": [100, 100],
        "tokens_per_j": tokj,
        "peak_power_w": [cap, cap],
    }


def test_pals_is_held_to_the_best_static_cap_with_no_more_violated_windows() -> None:
    runs = [
        # a: PALS spends 2 windows (misses the 1 % budget) at 1.2 and 2.2 tok/J.
        run("a/none", "none", "pals", 1, 1.2, violated=2),
        run("a/none", "none", "pals", 2, 2.2),
        # b: PALS spends none; the front has no cap that clean.
        run("b/static-60%", "static", "pals", 1, 1.0),
        run("b/static-60%", "static", "pals", 2, 1.0),
    ]
    front = {
        "a/none": [
            _point(200, [3, 2], [2.0, 3.0]),  # most efficient, but 5 windows: out
            _point(250, [1, 1], [1.0, 2.0]),  # 2 windows, as PALS: the best that fits
            _point(300, [0, 1], [0.8, 1.6]),  # fits, less efficient
        ],
        "b/static-60%": [_point(300, [0, 1], [0.9, 0.9])],
    }
    s = summarize(runs, front)
    a = s["efficiency_vs_static_front_at_pals_qos_by_scenario"]["a/none"]
    assert a["cap_w"] == 250 and a["static_violated"] == 2 and a["pals_violated"] == 2
    assert a["mean"] == pytest.approx((1.2 / 1.0 + 2.2 / 2.0) / 2) and a["n"] == 2
    assert s["efficiency_vs_static_front_not_comparable"] == ["b/static-60%"]
    assert s["efficiency_vs_static_front_at_pals_qos_min"] == pytest.approx(a["mean"])
    assert s["efficiency_vs_static_front_at_pals_qos_at_or_above"] == 1
    # The matched-QoS figure scores the same PALS 0 against a pick with 1 window; the front
    # figure is reported beside it, without a goal.
    assert "efficiency_vs_static_front_at_pals_qos_min" not in s["goals"]
    table = static_front_markdown(s)
    assert "| a/none | 1.150 (" in table and "| 250 W | 2 / 2 of 200 |" in table
    assert "b/static-60%" in table and "no cap of the front" in table


def test_without_a_front_the_front_figures_are_empty() -> None:
    s = summarize([run("a/none", "none", "pals", 1, 1.0)])
    assert s["efficiency_vs_static_front_at_pals_qos_min"] is None
    assert s["efficiency_vs_static_front_at_pals_qos_by_scenario"] == {}
