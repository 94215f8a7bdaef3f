"""The model's ITL p99 against the spread of 5-s window p99s at fixed caps: what a 1 % QoS budget
asks of a plan.

For each cap of a scenario this runs the static cap (stock's batch, the scenario's load, five
seeds: 100 QoS windows) and prints the distribution of the windows' ITL p99 over the SLO (median,
90th percentile, maximum, windows over the SLO) next to what PALS's performance model predicts at
that cap: the ITL p99 at the operating concurrency where the profiled throughput meets the offered
load (Little's law, the planner's rule; found here on a 400-point log grid of concurrencies, not
on the planner's table), and at that concurrency plus the planner's burst margin. A plan within
a 1 % violation budget needs the 1-in-100 window under the SLO, not the typical one.

    .venv/bin/python benchmarks/pals_window_tail.py --cache var/paper \\
        --scenario llama-3.1-70b@4:0.3:none --caps 200,225,250,275,300,350 \\
        [--scenario llama-3.1-8b@1:0.7:none --caps 450,500,550 ...]

A scenario is ``MODEL@GPUS:LOAD:BUDGET[:FRAC]`` as in ``pals_qos_excess.py``, ``--caps`` given once
for all of them or once each, in order; the profile is the
one cached under ``CACHE/profiles`` (made if missing).
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from pals_qos_excess import scenario_from_spec

from pals_core.control.pals_state import PalsConfig
from pals_core.experiments.pals_adapter import ensure_profile
from pals_core.experiments.runner import FixedConfig, run_scenario
from pals_core.experiments.scenarios import Scenario, full_matrix
from pals_core.model import PerformanceModel, Profile


def _window_ratios(
    scenario: Scenario, cap_w: float, batch: int
) -> tuple[list[float], float, float]:
    """Per QoS window its ITL p99 over the SLO, the offered load (tok/s) and the SLO (s)."""
    r = run_scenario(scenario, "static-cap", fixed=FixedConfig(cap_w, batch), keep_windows=True)
    assert r.window_qos is not None
    return [w.itl_p99_s / r.itl_slo_s for w in r.window_qos], r.offered_tok_s, r.itl_slo_s


def operating_batch(model: PerformanceModel, cap_w: float, load_tok_s: float) -> float:
    """The smallest concurrency whose predicted throughput at ``cap_w`` reaches the load (NaN
    when none does)."""
    for n in np.geomspace(1.0, model.max_batch, 400):
        if model.predict(cap_w, float(n)).throughput_tok_s >= load_tok_s:
            return float(n)
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", required=True)
    parser.add_argument(
        "--caps",
        action="append",
        required=True,
        help="per-GPU caps, comma-separated: once for every scenario, or once per scenario",
    )
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--cache", type=Path, default=Path("var/paper"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    margs = {"physics": "nominal", "slo": "relaxed"}
    matrix = full_matrix(**margs)
    if len(args.caps) not in (1, len(args.scenario)):
        parser.error("give --caps once, or once per --scenario (in the same order)")
    cap_lists = [[float(c) for c in caps.split(",")] for caps in args.caps]
    if len(cap_lists) == 1:
        cap_lists *= len(args.scenario)
    seeds = [int(s) for s in args.seeds.split(",")]
    burst = PalsConfig().burst_margin
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for spec, caps in zip(args.scenario, cap_lists, strict=True):
            first = scenario_from_spec(spec, seeds[0], margs)
            profile = ensure_profile(first.node, matrix, args.cache, "nominal")
            model = PerformanceModel.fit(Profile.load(profile))
            futures = {
                (cap, seed): pool.submit(
                    _window_ratios, scenario_from_spec(spec, seed, margs), cap, 1024
                )
                for cap in caps
                for seed in seeds
            }
            print(spec)
            for cap in caps:
                runs = [futures[(cap, seed)].result() for seed in seeds]
                ratios = np.array([x for r, _, _ in runs for x in r])
                _, load, slo_s = runs[0]
                n = operating_batch(model, cap, load)
                pred = model.predict(cap, n).itl_p99_s / slo_s
                pred_burst = model.predict(cap, n * (1.0 + burst)).itl_p99_s / slo_s
                print(
                    f"  cap {cap:4.0f} W | model: operating batch {n:6.1f}, ITL p99/SLO "
                    f"{pred:.2f} ({pred_burst:.2f} with the burst margin) | windows: median "
                    f"{np.median(ratios):.2f}, p90 {np.quantile(ratios, 0.9):.2f}, max "
                    f"{ratios.max():.2f}, over the SLO {int((ratios > 1).sum())}/{len(ratios)}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
