"""A Markdown rendering of ``results.json`` (the tables of ``docs/results.md``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from pals_core.experiments.scenarios import CONTROLLERS


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
    """Per scenario: tok/J (mean over seeds); violated/all QoS windows (summed over seeds); the
    worst seed's time over budget."""
    present = [c for c in CONTROLLERS if any(r["controller"] == c for r in runs)]
    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        groups[run["scenario"]][run["controller"]].append(run)
    header = "| scenario | " + " | ".join(present) + " |"
    lines = [header, "|---|" + "---:|" * len(present)]
    for scenario in sorted(groups):
        cells = []
        for controller in present:
            group = groups[scenario].get(controller, [])
            if not group:
                cells.append("")
                continue
            tokj = float(np.mean([r["tokens_per_j"] for r in group]))
            violated = sum(r["qos_violated"] for r in group)
            windows = sum(r["qos_windows"] for r in group)
            over = [r["budget_time_over_frac"] for r in group]
            over_txt = (
                f"; {max(o for o in over if o is not None) * 100:.2f}%"
                if any(o is not None for o in over)
                else ""
            )
            cells.append(f"{tokj:.2f}; {violated}/{windows}{over_txt}")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
