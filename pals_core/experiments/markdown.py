"""A Markdown rendering of ``results.json`` (the tables of ``docs/results.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pals_core.experiments.tables import scenario_rows


def _f(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def goals_markdown(summary: dict[str, Any]) -> str:
    lines = ["| figure | value | goal | met |", "|---|---:|---|---|"]
    for field, goal in summary["goals"].items():
        met = "yes" if goal["met"] else "**no**"
        lines.append(
            f"| `{field}` | {_f(goal['value'], '.4f')} | {goal['op']} {goal['target']} | {met} |"
        )
    return "\n".join(lines)


def scenario_markdown(runs: Sequence[dict[str, Any]]) -> str:
    """Per scenario (:func:`~pals_core.experiments.tables.scenario_rows`)."""
    present, rows = scenario_rows(runs)
    lines = ["| scenario | " + " | ".join(present) + " |", "|---|" + "---:|" * len(present)]
    lines += [f"| {scenario} | " + " | ".join(cells) + " |" for scenario, cells in rows]
    return "\n".join(lines)


def decomposition_markdown(summary: dict[str, Any]) -> str:
    """Per scenario: tok/J of stock -> static-cap -> oracle-static -> pals (* QoS missed)."""
    steps = ("stock", "static-cap", "oracle-static", "pals")
    lines = [
        "| scenario | " + " | ".join(steps) + " | cap | + batch | + dynamics |",
        "|---|" + "---:|" * (len(steps) + 3),
    ]
    for scenario, row in sorted(summary.get("decomposition_by_scenario", {}).items()):
        cells = [f"{row['tokens_per_j'][c]:.2f}{'' if row['meets_qos'][c] else '*'}" for c in steps]
        gains = [
            f"{row[k] * 100:+.0f} %" for k in ("gain_static_cap", "gain_batch", "gain_dynamics")
        ]
        lines.append(f"| {scenario} | " + " | ".join(cells + gains) + " |")
    return "\n".join(lines)


def matched_qos_markdown(summary: dict[str, Any], reference: str = "static_cap") -> str:
    """Per scenario: PALS over the reference at matched QoS (0 where PALS misses the QoS
    budget), the violated windows of each over the seeds, and the tok/J ratio unmatched."""
    by = summary.get(f"efficiency_vs_{reference}_matched_qos_by_scenario") or {}
    lines = [
        "| scenario | matched-QoS ratio (95 %) | violated windows PALS / reference "
        "| unmatched ratio |",
        "|---|---:|---:|---:|",
    ]
    for scenario, row in sorted(by.items()):
        if row.get("pals_meets"):
            ratio = f"{row['mean']:.3f} ({_f(row.get('ci95_low'), '.3f')} .. "
            ratio += f"{_f(row.get('ci95_high'), '.3f')})"
            unmatched = f"{row['mean']:.3f}"
        else:
            ratio, unmatched = "0 (PALS misses QoS)", _f(row.get("unmatched_mean"), ".3f")
        windows = "-"
        if "pals_violated" in row:
            windows = f"{row['pals_violated']} / {row['reference_violated']} of {row['windows']}"
        lines.append(f"| {scenario} | {ratio} | {windows} | {unmatched} |")
    return "\n".join(lines)


def headline_markdown(summary: dict[str, Any]) -> str:
    """The reported-without-goal figures, with their 95 % intervals."""
    lines = ["| figure | value | 95 % interval | where |", "|---|---:|---|---|"]
    for name in ("efficiency_gain_vs_stock", "efficiency_gain_vs_static_cap"):
        gain = summary.get(name) or {}
        for kind in ("mean", "max"):
            if gain.get(kind) is None:
                continue
            low, high = gain.get(f"{kind}_ci95", [None, None])
            where = gain.get("max_scenario", "") if kind == "max" else "over scenarios"
            lines.append(
                f"| `{name}_{kind}` | {gain[kind]:.3f} | {_f(low, '.3f')} .. {_f(high, '.3f')} "
                f"| {where} |"
            )
    front = summary.get("efficiency_vs_static_front_at_pals_qos_by_scenario") or {}
    if front:
        worst = summary["efficiency_vs_static_front_at_pals_qos_worst_scenario"]
        low, high = front[worst].get("ci95_low"), front[worst].get("ci95_high")
        lines.append(
            f"| `efficiency_vs_static_front_at_pals_qos_min` "
            f"| {summary['efficiency_vs_static_front_at_pals_qos_min']:.3f} "
            f"| {_f(low, '.3f')} .. {_f(high, '.3f')} | {worst} |"
        )
        low, high = summary.get("efficiency_vs_static_front_at_pals_qos_mean_ci95") or [None] * 2
        lines.append(
            f"| `efficiency_vs_static_front_at_pals_qos_mean` "
            f"| {_f(summary.get('efficiency_vs_static_front_at_pals_qos_mean'), '.3f')} "
            f"| {_f(low, '.3f')} .. {_f(high, '.3f')} | at or above the front in "
            f"{summary.get('efficiency_vs_static_front_at_pals_qos_at_or_above')} of {len(front)} "
            "scenarios |"
        )
    refs = summary.get("qos_excess_windows_vs_cap_only_of_references") or {}
    for controller, ref in refs.items():
        if ref.get("max") is None:
            continue
        lines.append(
            f"| `qos_excess_windows_vs_cap_only_max` of {controller} | {ref['max']} | - "
            f"| over cap-only in {ref['scenarios_over_cap_only']} of {ref['scenarios']} "
            f"constrained scenarios ({ref['scenarios_over_cap_only_meeting_qos']} of them "
            "within the QoS budget) |"
        )
    return "\n".join(lines)


def static_front_markdown(summary: dict[str, Any]) -> str:
    """Per scenario: PALS over the best static cap with no more violated windows than PALS."""
    by = summary.get("efficiency_vs_static_front_at_pals_qos_by_scenario") or {}
    lines = [
        "| scenario | PALS / best static cap at PALS's QoS (95 %) | that cap | violated windows "
        "PALS / it |",
        "|---|---:|---:|---:|",
    ]
    for scenario, row in sorted(by.items()):
        ratio = f"{row['mean']:.3f} ({_f(row.get('ci95_low'), '.3f')} .. "
        ratio += f"{_f(row.get('ci95_high'), '.3f')})"
        lines.append(
            f"| {scenario} | {ratio} | {row['cap_w']:g} W | {row['pals_violated']} / "
            f"{row['static_violated']} of {row['windows']} |"
        )
    for scenario in summary.get("efficiency_vs_static_front_not_comparable") or []:
        lines.append(f"| {scenario} | - (no cap of the front as few windows as PALS) | - | - |")
    return "\n".join(lines)
