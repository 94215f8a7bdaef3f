"""PALS against the hindsight picks after its start-up: the same scenarios, measured later.

The paper matrix measures a static scenario over 100 s after a 20-s warm-up, so PALS's own
warm-up (up to 15 s at the safe default), first descent and first probes are inside the figure,
while the static cap and the oracle start at their picks. This script runs the same scenarios
(node, load, budget, seeds, profile) longer and measures every controller over the same number
of QoS windows after a later start (default: 100 s from 140 s on), using the static-cap and
oracle picks the matrix found (``results.json``'s ``oracle``), so it tells how much of PALS's
gap to the hindsight picks is its start-up and how much its steady state.

    .venv/bin/python benchmarks/pals_steady_state.py --results var/paper/results.json \\
        --scenario llama-3.1-8b@1:0.3:static:0.75 --scenario qwen3-235b-a22b-fp8@8:0.3:none \\
        [--duration 240 --warmup 140] [--duration 120 --warmup 20]

A scenario is ``MODEL@GPUS:LOAD:BUDGET[:FRAC]`` as in ``pals_qos_excess.py``. Prints, per
scenario and controller, violated windows over all seeds and mean tok/J, and PALS's tok/J over
the static cap's and the oracle's (mean of per-seed ratios).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from pals_qos_excess import scenario_from_spec

from pals_core.experiments.pals_adapter import ensure_profile
from pals_core.experiments.runner import FixedConfig, run_scenario
from pals_core.experiments.scenarios import Scenario, full_matrix

CONTROLLERS = ("pals", "cap-only", "static-cap", "oracle-static")


def _run(
    scenario: Scenario, controller: str, profile: Path, fixed: FixedConfig | None
) -> tuple[int, int, float]:
    r = run_scenario(scenario, controller, profile_path=profile, fixed=fixed)
    return r.qos_violated, r.qos_windows, r.tokens_per_j


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="a paper run's results.json")
    parser.add_argument("--scenario", action="append", required=True)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--duration", type=float, default=240.0)
    parser.add_argument("--warmup", type=float, default=140.0, help="measured from here on")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if not args.warmup < args.duration:
        parser.error("--warmup must be shorter than --duration")
    results = json.loads(args.results.read_text())
    picks = results["oracle"]
    matrix_meta = results["meta"]["matrix"]
    physics, slo = matrix_meta["physics"], matrix_meta["slo"]
    margs = {"physics": physics, "slo": slo}
    matrix = full_matrix(**margs)
    cache = args.results.parent
    seeds = [int(s) for s in args.seeds.split(",")]
    futures = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for spec in args.scenario:
            for seed in seeds:
                base = scenario_from_spec(spec, seed, margs)
                scenario = dataclasses.replace(base, duration_s=args.duration, warmup_s=args.warmup)
                profile = ensure_profile(scenario.node, matrix, cache, physics)
                for c in CONTROLLERS:
                    fixed = None
                    if c in ("static-cap", "oracle-static"):
                        pick = picks.get(f"{base.key}#{c}")
                        if pick is None:
                            raise SystemExit(f"{args.results} has no {c} pick for {base.key}")
                        fixed = FixedConfig(pick["cap_w"], pick["batch_limit"])
                    futures[(spec, seed, c)] = pool.submit(_run, scenario, c, profile, fixed)
        runs = {k: f.result() for k, f in futures.items()}
    print(
        f"measured from {args.warmup:g} s to {args.duration:g} s, seeds {args.seeds}; "
        "violated windows / windows, mean tok/J"
    )
    for spec in args.scenario:
        line = [spec]
        tokj: dict[str, np.ndarray] = {}
        for c in CONTROLLERS:
            rs = [runs[(spec, s, c)] for s in seeds]
            tokj[c] = np.array([r[2] for r in rs])
            line.append(f"{c} {sum(r[0] for r in rs)}/{sum(r[1] for r in rs)} {tokj[c].mean():.3f}")
        for ref in ("static-cap", "oracle-static"):
            line.append(f"pals/{ref} {np.mean(tokj['pals'] / tokj[ref]):.3f}")
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
