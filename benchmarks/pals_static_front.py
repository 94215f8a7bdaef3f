"""PALS against the static cap's whole front, not only its pick: is PALS below the front, or at
another point on it?

The matched-QoS figure compares PALS with the static cap's pick: the lowest cap (at stock's batch)
whose runs meet the QoS budget (1 % of 100 windows: at most one violated window over five seeds).
Where PALS spends 2-4 windows it "misses matched QoS" and counts 0, whatever tok/J it reached. This
script runs the static caps around the pick (the matrix's 25-W grid, ``--span-w`` either side, on
the same node, load, budget, seeds) and prints, per scenario, the static front (cap: violated
windows, mean tok/J) and PALS's tok/J over the **best static cap with no more violated windows
than PALS**: >= 1 says no fixed cap buys PALS's QoS at PALS's efficiency (PALS on or above the
front); < 1 says one does (PALS below it).

    .venv/bin/python benchmarks/pals_static_front.py --results var/paper/results.json \\
        [--scenario 'llama-3.1-70b@4xH100-SXM/load-70%/none' ...] [--span-w 100]

Without ``--scenario``, every scenario where PALS misses matched QoS against the static cap in
``results.json`` is run. PALS runs use the profile cached next to ``results.json``.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pals_core.experiments.pals_adapter import ensure_profile
from pals_core.experiments.runner import FixedConfig, run_scenario
from pals_core.experiments.scenarios import Scenario, full_matrix
from pals_core.experiments.simnode import build_node


def _run(
    scenario: Scenario, controller: str, profile: Path | None, fixed: FixedConfig | None
) -> tuple[int, float]:
    r = run_scenario(scenario, controller, profile_path=profile, fixed=fixed)
    return r.qos_violated, r.tokens_per_j


def best_at_most(front: dict[float, tuple[int, float]], violated: int) -> tuple[float, float]:
    """The (cap, tok/J) of the most efficient static cap with at most ``violated`` windows
    (NaN, NaN when none has so few)."""
    ok = [(tokj, cap) for cap, (v, tokj) in front.items() if v <= violated]
    if not ok:
        return float("nan"), float("nan")
    tokj, cap = max(ok)
    return cap, tokj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="a paper run's results.json")
    parser.add_argument("--scenario", action="append", help="a scenario key of results.json")
    parser.add_argument("--span-w", type=float, default=100.0, help="caps this far either side")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    meta = results["meta"]["matrix"]
    physics, slo = meta["physics"], meta["slo"]
    matrix = full_matrix(physics=physics, slo=slo)
    by_key: dict[str, list[Scenario]] = {}
    for s in matrix.scenarios():
        by_key.setdefault(s.key, []).append(s)
    misses = results["summary"]["efficiency_vs_static_cap_matched_qos_by_scenario"]
    keys = args.scenario or [k for k, v in misses.items() if not v.get("pals_meets", True)]
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        raise SystemExit(f"not scenarios of the {physics}/{slo} matrix: {', '.join(unknown)}")
    cache = args.results.parent
    step_w = matrix.oracle_cap_step_w
    futures: dict[tuple[str, int, str | float], Future[tuple[int, float]]] = {}
    fronts_caps: dict[str, list[float]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for key in keys:
            pick = results["oracle"].get(f"{key}#static-cap")
            if pick is None:
                raise SystemExit(f"{args.results} has no static-cap pick for {key}")
            scenarios = by_key[key]
            node = scenarios[0].node
            profile = ensure_profile(node, matrix, cache, physics)
            first = scenarios[0]
            handle = build_node(
                node,
                load_frac=first.load_frac,
                seed=first.seed,
                physics=first.physics,
                slo=first.slo,
                device_speed=first.device_speed,
                device_power=first.device_power,
            )
            gpu = handle.gpus[0].power_limit_constraints()
            top_w = gpu.max_w
            if first.budget_frac is not None:  # a static budget: caps within its even share
                top_w = min(top_w, first.budget_frac * handle.max_power_w / node.num_gpus)
            limits = (gpu.min_w, top_w)
            n = int(args.span_w // step_w)
            caps = [
                pick["cap_w"] + k * step_w
                for k in range(-n, n + 1)
                if limits[0] - 1e-9 <= pick["cap_w"] + k * step_w <= limits[1] + 1e-9
            ]
            fronts_caps[key] = caps
            for s in scenarios:
                futures[(key, s.seed, "pals")] = pool.submit(_run, s, "pals", profile, None)
                for cap in caps:
                    fixed = FixedConfig(cap, pick["batch_limit"])
                    futures[(key, s.seed, cap)] = pool.submit(_run, s, "static-cap", None, fixed)
        runs = {k: f.result() for k, f in futures.items()}
    print("per scenario: PALS violated windows, tok/J; static caps cap: violated, tok/J")
    for key in keys:
        seeds = sorted({s.seed for s in by_key[key]})
        pals = [runs[(key, seed, "pals")] for seed in seeds]
        pals_v, pals_tokj = sum(v for v, _ in pals), float(np.mean([t for _, t in pals]))
        front = {}
        for cap in fronts_caps[key]:
            rs = [runs[(key, seed, cap)] for seed in seeds]
            front[cap] = (sum(v for v, _ in rs), float(np.mean([t for _, t in rs])))
        cap, tokj = best_at_most(front, pals_v)
        cells = " ".join(f"{c:g}:{v}/{t:.3f}" for c, (v, t) in sorted(front.items()))
        print(f"{key}\n  pals {pals_v} windows {pals_tokj:.3f} tok/J | static {cells}")
        print(
            f"  best static with <= {pals_v} windows: {cap:g} W {tokj:.3f} tok/J; "
            f"pals / it = {pals_tokj / tokj:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
