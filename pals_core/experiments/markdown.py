"""A Markdown rendering of ``results.json`` (the tables of ``docs/results.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pals_core.experiments.tables import scenario_rows


def _f(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


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
