"""The headline figures of the paper experiment, computed from the list of run records.

Pure functions over the dictionaries that ``results.json`` stores, so the summary can be
recomputed from a saved file and tested on hand-made runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Run = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Goal:
    field: str
    op: str  # ">=" or "<="
    target: float


GOALS: tuple[Goal, ...] = (
    Goal("efficiency_gain_vs_stock_max", ">=", 0.263),
    Goal("efficiency_gain_vs_stock_mean", ">=", 0.15),
    Goal("efficiency_vs_oracle_min", ">=", 0.97),
    Goal("qos_violation_ratio_cap_only_over_pals_min", ">=", 7.0),
    Goal("budget_energy_over_frac_max", "<=", 0.001),
    Goal("budget_time_over_frac_max", "<=", 0.01),
    Goal("settling_s_p95", "<=", 2.0),
)


def _index(runs: Iterable[Run]) -> dict[tuple[str, str], dict[int, Run]]:
    """(scenario, controller) -> seed -> run."""
    out: dict[tuple[str, str], dict[int, Run]] = defaultdict(dict)
    for run in runs:
        out[(run["scenario"], run["controller"])][run["seed"]] = run
    return out


def _scenarios(runs: Sequence[Run], kinds: set[str]) -> list[str]:
    return sorted({r["scenario"] for r in runs if r["budget_kind"] in kinds})


def _paired_ratios(
    index: dict[tuple[str, str], dict[int, Run]], scenario: str, num: str, den: str, field: str
) -> list[float]:
    a, b = index.get((scenario, num), {}), index.get((scenario, den), {})
    ratios = []
    for seed in sorted(set(a) & set(b)):
        x, y = a[seed].get(field), b[seed].get(field)
        if x is not None and y is not None and y > 0 and math.isfinite(x):
            ratios.append(x / y)
    return ratios


def _finite_max(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return max(vals) if vals else None


def summarize(runs: Sequence[Run]) -> dict[str, Any]:
    index = _index(runs)
    unconstrained = _scenarios(runs, {"none"})
    static = _scenarios(runs, {"none", "static"})
    constrained = _scenarios(runs, {"static", "dynamic"})

    gains = {}
    for scenario in unconstrained:
        ratios = _paired_ratios(index, scenario, "pals", "stock", "tokens_per_j")
        if ratios:
            gains[scenario] = float(np.mean(ratios)) - 1.0

    vs_oracle = {}
    for scenario in static:
        ratios = _paired_ratios(index, scenario, "pals", "oracle-static", "tokens_per_j")
        if ratios:
            vs_oracle[scenario] = float(np.mean(ratios))

    qos_ratio: dict[str, float] = {}
    qos_ratio_pals_zero: list[str] = []
    qos_both_zero: list[str] = []
    for scenario in constrained:
        pals = index.get((scenario, "pals"), {})
        cap = index.get((scenario, "cap-only"), {})
        seeds = sorted(set(pals) & set(cap))
        if not seeds:
            continue
        pals_v = sum(pals[s]["qos_violated"] for s in seeds)
        cap_v = sum(cap[s]["qos_violated"] for s in seeds)
        if pals_v == 0 and cap_v == 0:
            qos_both_zero.append(scenario)
            continue
        if pals_v == 0:
            qos_ratio_pals_zero.append(scenario)
        qos_ratio[scenario] = cap_v / max(pals_v, 1)

    pals_budgeted = [
        r for r in runs if r["controller"] == "pals" and r["budget_kind"] in ("static", "dynamic")
    ]
    settling = [s for r in pals_budgeted for s in r["settling_s"]]
    settling_all = [s for r in pals_budgeted for s in r["settling_all_s"]]
    worst_qos_scenario = min(qos_ratio, key=lambda k: qos_ratio[k]) if qos_ratio else None

    summary: dict[str, Any] = {
        "efficiency_gain_vs_stock_max": max(gains.values()) if gains else None,
        "efficiency_gain_vs_stock_mean": float(np.mean(list(gains.values()))) if gains else None,
        "efficiency_gain_vs_stock_by_scenario": gains,
        "efficiency_vs_oracle_min": min(vs_oracle.values()) if vs_oracle else None,
        "efficiency_vs_oracle_by_scenario": vs_oracle,
        "qos_violation_ratio_cap_only_over_pals_min": (
            qos_ratio[worst_qos_scenario] if worst_qos_scenario else None
        ),
        "qos_violation_ratio_worst_scenario": worst_qos_scenario,
        "qos_violation_ratio_pals_zero_scenarios": qos_ratio_pals_zero,
        "qos_violation_ratio_pals_zero_note": (
            "where PALS had no violated window the ratio is cap-only's count over one violation"
        ),
        "qos_violation_ratio_by_scenario": qos_ratio,
        "qos_violation_both_zero_scenarios": qos_both_zero,
        "budget_time_over_frac_max": _finite_max(r["budget_time_over_frac"] for r in pals_budgeted),
        "budget_energy_over_frac_max": _finite_max(
            r["budget_energy_over_frac"] for r in pals_budgeted
        ),
        "settling_s_p95": float(np.percentile(settling, 95)) if settling else 0.0,
        "settling_s_max": max(settling) if settling else 0.0,
        "settling_binding_steps": len(settling),
        "settling_all_steps": len(settling_all),
        "pals_qos_violation_frac_max": _finite_max(
            r["qos_violated_frac"]
            for r in runs
            if r["controller"] == "pals" and r["budget_kind"] in ("static", "dynamic")
        ),
    }
    summary["goals"] = check_goals(summary)
    summary["by_controller"] = by_controller(runs)
    return summary


def check_goals(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for goal in GOALS:
        value = summary.get(goal.field)
        met = value is not None and (
            value >= goal.target if goal.op == ">=" else value <= goal.target
        )
        out[goal.field] = {"target": goal.target, "op": goal.op, "value": value, "met": met}
    return out


def by_controller(runs: Sequence[Run]) -> dict[str, dict[str, dict[str, float]]]:
    """Per budget kind and controller: mean tok/J, violated-window fraction, time over budget."""
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run["budget_kind"], run["controller"])].append(run)
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (kind, controller), group in sorted(groups.items()):
        over = [r["budget_time_over_frac"] for r in group if r["budget_time_over_frac"] is not None]
        out[kind][controller] = {
            "runs": len(group),
            "tokens_per_j_mean": float(np.mean([r["tokens_per_j"] for r in group])),
            "qos_violated_frac_mean": float(np.mean([r["qos_violated_frac"] for r in group])),
            "budget_time_over_frac_max": max(over) if over else math.nan,
        }
    return dict(out)
