"""Wall time of ``gridlink.core.allocator.allocate`` on a large fleet.

Builds a fleet with realistic power-to-throughput curves (4 to 8 measured caps per node, a
saturating curve with a little measurement noise, so some curves need their concave hull), mixed
tiers and some demand-limited nodes, then times ``allocate`` (validation, hull, water-filling,
result dicts: everything a caller pays) over repeated runs at budgets that cut through each tier.
Prints wall time and CPU time: on a shared machine the gap between them is other processes.

    .venv/bin/python benchmarks/allocate_fleet.py [--nodes 10000] [--runs 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time

from gridlink.core.allocator import NodeSpec, allocate

# Per-GPU power ranges (W) of the two SKUs the simulator models.
GPU_RANGES_W = {"H100-SXM": (200.0, 700.0), "A100-SXM": (100.0, 400.0)}


def build_fleet(node_count: int, rng: random.Random) -> list[NodeSpec]:
    """Nodes of 1 to 8 GPUs with saturating throughput curves sampled at 4 to 8 caps."""
    nodes = []
    for node_id in range(1, node_count + 1):
        gpu = rng.choice(list(GPU_RANGES_W))
        gpus = rng.choice((1, 2, 4, 8))
        lo_w, hi_w = GPU_RANGES_W[gpu]
        min_w, max_w = lo_w * gpus, hi_w * gpus
        peak_tok_s = rng.uniform(1500.0, 4000.0) * gpus
        knee_w = rng.uniform(0.15, 0.4) * (max_w - min_w)
        caps = sorted(
            {min_w, max_w, *(rng.uniform(min_w, max_w) for _ in range(rng.randint(2, 6)))}
        )
        curve = []
        for cap_w in caps:
            tok_s = peak_tok_s * (1.0 - math.exp(-(cap_w - min_w + 0.3 * knee_w) / knee_w))
            curve.append((cap_w, tok_s * (1.0 + rng.uniform(-0.01, 0.01))))
        # Measurement noise must not make throughput fall: keep it non-decreasing.
        for i in range(1, len(curve)):
            curve[i] = (curve[i][0], max(curve[i][1], curve[i - 1][1]))
        tier = rng.choices((0, 1, 2), weights=(2, 5, 3))[0]
        demand_w = rng.uniform(min_w, max_w) if rng.random() < 0.25 else None
        nodes.append(NodeSpec(node_id, min_w, max_w, tier, tuple(curve), demand_w))
    rng.shuffle(nodes)
    return nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    nodes = build_fleet(args.nodes, random.Random(args.seed))
    sum_min_w = sum(n.min_w for n in nodes)
    sum_max_w = sum(n.max_w for n in nodes)
    fractions = (0.15, 0.35, 0.55, 0.75, 0.95)  # of the range between sum of mins and maxes
    budgets_w = [sum_min_w + f * (sum_max_w - sum_min_w) for f in fractions]
    segments = sum(len(n.curve) - 1 for n in nodes)

    allocate(budgets_w[0], nodes)  # warm-up: imports, numpy first calls
    wall_ms, cpu_ms = [], []
    for run in range(args.runs):
        budget_w = budgets_w[run % len(budgets_w)]
        started, started_cpu = time.perf_counter(), time.process_time()
        result = allocate(budget_w, nodes)
        wall_ms.append((time.perf_counter() - started) * 1000.0)
        cpu_ms.append((time.process_time() - started_cpu) * 1000.0)
        assert result.feasible and result.total_w <= budget_w

    print(f"allocate: {args.nodes} nodes, {segments} curve segments, {args.runs} runs")
    print(f"budgets: {', '.join(f'{b / 1e6:.2f} MW' for b in budgets_w)} (cycled)")
    for label, samples in (("wall", wall_ms), ("cpu ", cpu_ms)):
        p50, p99, worst = percentiles(samples)
        print(f"{label} p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {worst:.1f} ms")
    print(f"load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99 (nearest rank) and max."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered), p99, ordered[-1]


if __name__ == "__main__":
    main()
