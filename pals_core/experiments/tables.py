"""The per-scenario table of the paper experiment, built once for every rendering (terminal and
Markdown): each cell is one controller on one scenario over its seeds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pals_core.experiments.scenarios import CONTROLLERS
from pals_core.experiments.stats import estimate
from pals_core.experiments.summary import meets_qos


def scenario_rows(runs: Sequence[dict[str, Any]]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The controllers present, and per scenario one cell per controller:
    ``tok/J mean +- 95 % half-interval; violated/all windows (summed over seeds, * when QoS is
    missed); the worst seed's time over budget``."""
    present = [c for c in CONTROLLERS if any(r["controller"] == c for r in runs)]
    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        groups[run["scenario"]][run["controller"]].append(run)
    rows = []
    for scenario in sorted(groups):
        cells = []
        for controller in present:
            group = groups[scenario].get(controller, [])
            cells.append(_cell(group) if group else "")
        rows.append((scenario, cells))
    return present, rows


def _cell(group: list[dict[str, Any]]) -> str:
    tokj = estimate([r["tokens_per_j"] for r in group])
    half = "" if tokj.n < 2 else f" ±{(tokj.high - tokj.low) / 2:.2f}"
    violated = sum(r["qos_violated"] for r in group)
    windows = sum(r["qos_windows"] for r in group)
    missed = "" if meets_qos({r["seed"]: r for r in group}) else "*"
    over = [r["budget_time_over_frac"] for r in group if r["budget_time_over_frac"] is not None]
    over_txt = f"; {max(over) * 100:.1f}%" if over else ""
    return f"{tokj.mean:.2f}{half}; {violated}/{windows}{missed}{over_txt}"
