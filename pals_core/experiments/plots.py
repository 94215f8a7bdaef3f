"""PNG figures of the paper experiment (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pals_core.experiments.scenarios import CONTROLLERS

COLORS = {
    "stock": "tab:gray",
    "static-cap": "tab:brown",
    "cap-only": "tab:orange",
    "cap-latency": "tab:red",
    "batch-only": "tab:purple",
    "oracle-static": "tab:green",
    "pals": "tab:blue",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _save(plt: Any, fig: Any, title: str, path: Path, dpi: int) -> Path:
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_dynamic_power(
    series: dict[str, dict[str, list[float | None]]], output_dir: Path
) -> list[Path]:
    """One figure per dynamic scenario (first seed): each controller's power against the budget."""
    plt = _pyplot()
    by_scenario: dict[str, dict[str, dict[str, list[float | None]]]] = defaultdict(dict)
    for key, data in series.items():
        scenario, seed, controller = key.split("#")
        by_scenario[f"{scenario}#{seed}"][controller] = data
    paths = []
    for scenario_seed, controllers in sorted(by_scenario.items()):
        scenario, seed = scenario_seed.split("#")
        if seed != min(k.split("#")[1] for k in by_scenario if k.startswith(scenario + "#")):
            continue
        names = [c for c in CONTROLLERS if c in controllers]
        fig, axes = plt.subplots(len(names), 1, figsize=(12, 2.2 * len(names)), sharex=True)
        axes = np.atleast_1d(axes)
        for ax, name in zip(axes, names, strict=True):
            data = controllers[name]
            t = np.asarray(data["time_s"], dtype=float) / 60.0
            budget = np.asarray([np.nan if b is None else b for b in data["budget_w"]], dtype=float)
            power = np.asarray([np.nan if p is None else p for p in data["power_w"]], dtype=float)
            ax.plot(t, budget, color="black", lw=1.0, label="budget")
            ax.plot(t, power, color=COLORS.get(name, "tab:red"), lw=0.7, label=f"{name} power")
            ax.set_ylabel("W")
            ax.legend(loc="lower left", fontsize=8)
        axes[-1].set_xlabel("time (min)")
        title = f"{scenario} ({seed}): GPU power against the budget"
        paths.append(_save(plt, fig, title, output_dir / f"power_{_safe(scenario)}.png", 110))
    return paths


def plot_efficiency_vs_load(runs: Sequence[dict[str, Any]], output_dir: Path) -> list[Path]:
    """tok/J against offered load per controller, one panel per node, one figure per budget."""
    plt = _pyplot()
    paths = []
    budgets = sorted({r["budget"] for r in runs if r["budget_kind"] != "dynamic"})
    for budget in budgets:
        chosen = [r for r in runs if r["budget"] == budget]
        nodes = sorted({r["node"] for r in chosen})
        fig, axes = plt.subplots(1, len(nodes), figsize=(4.5 * len(nodes), 3.6), squeeze=False)
        for ax, node in zip(axes[0], nodes, strict=True):
            for controller in CONTROLLERS:
                points: dict[float, list[float]] = defaultdict(list)
                for r in chosen:
                    mine = r["node"] == node and r["controller"] == controller
                    if mine and r["tokens_per_j"] is not None:
                        points[r["load_frac"]].append(r["tokens_per_j"])
                if not points:
                    continue
                loads = sorted(points)
                means = [float(np.mean(points[x])) for x in loads]
                ax.plot(
                    [x * 100 for x in loads],
                    means,
                    marker="o",
                    label=controller,
                    color=COLORS.get(controller),
                )
            ax.set_title(node, fontsize=9)
            ax.set_xlabel("offered load (% of capacity)")
            ax.set_ylabel("tok/J")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        title = f"Efficiency against load, budget: {budget}"
        paths.append(_save(plt, fig, title, output_dir / f"tokj_vs_load_{_safe(budget)}.png", 110))
    return paths


def plot_pareto(
    runs: Sequence[dict[str, Any]],
    output_dir: Path,
    static_front: dict[str, list[dict[str, Any]]] | None = None,
) -> list[Path]:
    """Per node, one panel per unconstrained or static-budget scenario: each controller's tok/J
    (mean over seeds) against its violated-window fraction (summed over seeds), the Pareto view
    of efficiency and QoS; with ``static_front`` (``results.json``), the fixed caps around the
    static cap's pick as a line (each point one cap, its cap in W beside it)."""
    plt = _pyplot()
    paths = []
    for node in sorted({r["node"] for r in runs}):
        mine = [r for r in runs if r["node"] == node and r["budget_kind"] != "dynamic"]
        scenarios = sorted({r["scenario"] for r in mine})
        if not scenarios:
            continue
        cols = 4
        rows = (len(scenarios) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
        for ax, scenario in zip(axes.flat, scenarios, strict=False):
            for controller in CONTROLLERS:
                group = [
                    r for r in mine if r["scenario"] == scenario and r["controller"] == controller
                ]
                if not group:
                    continue
                windows = sum(r["qos_windows"] for r in group) or 1
                violated = sum(r["qos_violated"] for r in group) / windows
                tokj = sum(r["tokens_per_j"] for r in group) / len(group)
                ax.scatter([violated * 100], [tokj], color=COLORS.get(controller), label=controller)
            points = sorted((static_front or {}).get(scenario, []), key=lambda p: p["cap_w"])
            if points:
                xs = [100 * sum(p["qos_violated"]) / max(1, sum(p["qos_windows"])) for p in points]
                ys = [sum(p["tokens_per_j"]) / len(p["tokens_per_j"]) for p in points]
                ax.plot(xs, ys, color="0.6", lw=0.8, marker=".", ms=3, zorder=0, label="fixed caps")
                for x, y, p in zip(xs, ys, points, strict=True):
                    ax.annotate(f"{p['cap_w']:g}", (x, y), fontsize=5, color="0.4")
            ax.set_title(scenario.split("/", 1)[1], fontsize=8)
            ax.set_xlabel("violated windows (%)", fontsize=7)
            ax.set_ylabel("tok/J", fontsize=7)
        for ax in list(axes.flat)[len(scenarios) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=6)
        title = f"{node}: tok/J against violated QoS windows"
        paths.append(_save(plt, fig, title, output_dir / f"pareto_{_safe(node)}.png", 90))
    return paths
