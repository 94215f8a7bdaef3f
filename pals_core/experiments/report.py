"""Rich tables of the paper experiment's results, for the terminal."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from pals_core.experiments.scenarios import CONTROLLERS


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def scenario_table(runs: Sequence[dict[str, Any]]) -> Table:
    """Per scenario (mean over seeds): tok/J, violated windows and time over budget."""
    table = Table(title="Per scenario (mean over seeds): tok/J | violated windows | time over")
    table.add_column("scenario")
    present = [c for c in CONTROLLERS if any(r["controller"] == c for r in runs)]
    for controller in present:
        table.add_column(controller, justify="right")
    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        groups[run["scenario"]][run["controller"]].append(run)
    for scenario in sorted(groups):
        cells = []
        for controller in present:
            group = groups[scenario].get(controller, [])
            if not group:
                cells.append("")
                continue
            tokj = float(np.mean([r["tokens_per_j"] for r in group]))
            violated = sum(r["qos_violated"] for r in group)
            over = [
                r["budget_time_over_frac"] for r in group if r["budget_time_over_frac"] is not None
            ]
            over_txt = f" | {max(over) * 100:.2f}%" if over else ""
            cells.append(f"{tokj:.3f} | {violated}{over_txt}")
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
    console.print(
        f"worst QoS-ratio scenario: {summary.get('qos_violation_ratio_worst_scenario')}; "
        f"PALS max violated-window fraction (constrained): "
        f"{_fmt(summary.get('pals_qos_violation_frac_max'))}; "
        f"settling max {_fmt(summary.get('settling_s_max'), '.2f')} s over "
        f"{summary.get('settling_binding_steps')} binding budget falls"
    )
    console.print(f"wall time: {wall_s:.1f} s")
