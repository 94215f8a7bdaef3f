"""Rich tables of the paper experiment's results, for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from pals_core.experiments.tables import scenario_rows


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def scenario_table(runs: Sequence[dict[str, Any]]) -> Table:
    """Per scenario (:func:`~pals_core.experiments.tables.scenario_rows`)."""
    table = Table(
        title="Per scenario: tok/J ±95 %; violated/all windows (* QoS missed); worst time over"
    )
    present, rows = scenario_rows(runs)
    table.add_column("scenario")
    for controller in present:
        table.add_column(controller, justify="right")
    for scenario, cells in rows:
        table.add_row(scenario, *cells)
    return table


def goals_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Goals (PALS)")
    for col in ("figure", "value", "goal", "met"):
        table.add_column(col)
    for field, goal in summary["goals"].items():
        table.add_row(
            field,
            _fmt(goal["value"], ".4f"),
            f"{goal['op']} {goal['target']}",
            "[green]yes[/green]" if goal["met"] else "[red]no[/red]",
        )
    return table


def print_report(
    console: Console, runs: Sequence[dict[str, Any]], summary: dict[str, Any], wall_s: float
) -> None:
    console.print(scenario_table(runs))
    console.print(goals_table(summary))
    decomposition = summary.get("decomposition_mean") or {}
    console.print(
        f"worst matched-QoS scenario vs oracle: "
        f"{summary.get('efficiency_vs_oracle_matched_qos_worst_scenario')}; vs static cap: "
        f"{summary.get('efficiency_vs_static_cap_matched_qos_worst_scenario')}; "
        f"gain decomposition (mean): static cap {_fmt(decomposition.get('gain_static_cap'))}, "
        f"+ batch {_fmt(decomposition.get('gain_batch'))}, "
        f"+ dynamics {_fmt(decomposition.get('gain_dynamics'))}; "
        f"settling max {_fmt(summary.get('settling_s_max'), '.2f')} s over "
        f"{summary.get('binding_falls')} binding budget falls; batch-only infeasible runs: "
        f"{len(summary.get('batch_only_infeasible_runs') or [])}"
    )
    refs = summary.get("qos_excess_windows_vs_cap_only_of_references") or {}
    parts = [
        f"{c} {_fmt(r.get('max'))} (over cap-only in {r.get('scenarios_over_cap_only')} of "
        f"{r.get('scenarios')})"
        for c, r in refs.items()
        if r.get("max") is not None
    ]
    if parts:
        console.print("the hindsight picks' own QoS excess over cap-only: " + "; ".join(parts))
    front = summary.get("efficiency_vs_static_front_at_pals_qos_by_scenario") or {}
    if front:
        console.print(
            "PALS against the best static cap with no more violated windows: worst "
            f"{_fmt(summary.get('efficiency_vs_static_front_at_pals_qos_min'))} "
            f"({summary.get('efficiency_vs_static_front_at_pals_qos_worst_scenario')}), mean "
            f"{_fmt(summary.get('efficiency_vs_static_front_at_pals_qos_mean'))}, at or above "
            f"the front in {summary.get('efficiency_vs_static_front_at_pals_qos_at_or_above')} "
            f"of {len(front)} scenarios"
        )
    console.print(f"wall time: {wall_s:.1f} s")
