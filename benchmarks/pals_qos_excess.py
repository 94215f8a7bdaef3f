"""PALS against cap-only on a few paper-experiment scenarios: who violates which QoS windows.

Runs PALS and cap-only (and any other live controller named) on each scenario and seed exactly as
the paper experiment does (same node, load, budget, seed, profile), then prints per scenario the
violated windows of each controller summed over the seeds, PALS's excess over cap-only, PALS's
tok/J, and for every window PALS violates: what it broke (ITL / TTFT / throughput), its ITL and
TTFT p99 over the SLO, and the mean cap per GPU and batch limit PALS and cap-only ran in it.

    .venv/bin/python benchmarks/pals_qos_excess.py --scenario llama-3.1-8b@1:0.3:static:0.75 \\
        --scenario qwen3-235b-a22b-fp8@8:0.7:dynamic --seeds 1,2,3,4,5 \\
        --cache var/base [--set itl_setpoint=0.6]

A scenario is ``MODEL@GPUS:LOAD:BUDGET[:FRAC]`` with BUDGET ``none``, ``static`` (and its
fraction of max power) or ``dynamic``; durations are the full matrix's.
"""

from __future__ import annotations

import argparse
import ast
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pals_core.experiments.pals_adapter import ensure_profile
from pals_core.experiments.runner import RunResult, run_scenario
from pals_core.experiments.scenarios import NodeConfig, Scenario, full_matrix


def scenario_from_spec(spec: str, seed: int, matrix_args: dict[str, Any]) -> Scenario:
    """The full matrix's scenario ``MODEL@GPUS:LOAD:BUDGET[:FRAC]`` for ``seed`` (also used by
    ``pals_steady_state.py``)."""
    node_spec, load, kind, *frac = spec.split(":")
    model, gpus = node_spec.split("@")
    node = NodeConfig(model, "H100-SXM", int(gpus))
    m = full_matrix(**matrix_args)
    dynamic = kind == "dynamic"
    return Scenario(
        node,
        float(load),
        kind,  # type: ignore[arg-type]
        float(frac[0]) if frac else None,
        seed,
        m.dynamic_duration_s if dynamic else m.static_duration_s,
        m.warmup_s,
        m.physics,
        m.slo,
        m.regulation_base_frac if dynamic else 0.75,
    )


def _run(scenario: Scenario, controller: str, profile: Path | None, sets: dict[str, Any]) -> Any:
    result = run_scenario(
        scenario,
        controller,
        profile_path=profile,
        keep_series=True,
        keep_windows=True,
        pals_overrides=sets or None,
    )
    return result


def _window_knobs(result: RunResult, k: int) -> tuple[float, float]:
    """Mean cap per GPU and mean batch limit over QoS window ``k``."""
    assert result.series is not None
    start = result.warmup_s + 5.0 * k
    t = np.array(result.series["time_s"], dtype=float)
    sel = (t > start) & (t <= start + 5.0 + 1e-9)
    caps = np.array(result.series["cap_sum_w"], dtype=float)[sel]
    batch = np.array(result.series["batch_limit"], dtype=float)[sel]
    gpus = int(result.node.split("@")[1].split("x")[0])
    return float(caps.mean()) / gpus, float(batch.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", required=True)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--controllers", default="pals,cap-only")
    parser.add_argument(
        "--cache", type=Path, default=Path("var/excess"), help="PROFILE cache: CACHE/profiles"
    )
    parser.add_argument("--physics", default="nominal")
    parser.add_argument("--slo", default="relaxed")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="PalsConfig FIELD=VALUE")
    parser.add_argument("--quiet", action="store_true", help="no per-window lines")
    args = parser.parse_args()
    sets = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    seeds = [int(s) for s in args.seeds.split(",")]
    controllers = args.controllers.split(",")
    margs = {"physics": args.physics, "slo": args.slo}
    matrix = full_matrix(**margs)
    tasks = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for spec in args.scenario:
            for seed in seeds:
                scenario = scenario_from_spec(spec, seed, margs)
                profile = ensure_profile(scenario.node, matrix, args.cache, args.physics)
                for c in controllers:
                    tasks.append((spec, seed, c, pool.submit(_run, scenario, c, profile, sets)))
        results = {(spec, seed, c): f.result() for spec, seed, c, f in tasks}
    total_excess = 0
    for spec in args.scenario:
        line = [spec]
        for c in controllers:
            runs = [results[(spec, s, c)] for s in seeds]
            violated = sum(r.qos_violated for r in runs)
            windows = sum(r.qos_windows for r in runs)
            tokj = np.mean([r.tokens_per_j for r in runs])
            per_seed = "/".join(str(r.qos_violated) for r in runs)
            line.append(f"{c} {violated}/{windows} ({per_seed}) {tokj:.3f} tok/J")
        if "pals" in controllers and "cap-only" in controllers:
            pals_v = [results[(spec, s, "pals")].qos_violated for s in seeds]
            cap_v = [results[(spec, s, "cap-only")].qos_violated for s in seeds]
            excess = sum(pals_v) - sum(cap_v)
            total_excess += max(0, excess)
            line.append(f"excess {excess:+d}")
        print(" | ".join(line), flush=True)
        if args.quiet or "pals" not in controllers:
            continue
        for seed in seeds:
            pals = results[(spec, seed, "pals")]
            cap = results.get((spec, seed, "cap-only"))
            assert pals.window_qos is not None
            for k, w in enumerate(pals.window_qos):
                if not w.violated:
                    continue
                what = "+".join(
                    n
                    for n, v in (
                        ("itl", w.itl_violated),
                        ("ttft", w.ttft_violated),
                        ("short", w.throughput_short),
                    )
                    if v
                )
                pc, pb = _window_knobs(pals, k)
                other = ""
                if cap is not None and cap.window_qos is not None:
                    cc, cb = _window_knobs(cap, k)
                    cv = "V" if cap.window_qos[k].violated else "ok"
                    other = f" | cap-only {cc:5.0f} W b{cb:5.0f} {cv}"
                ttft = w.ttft_p99_s / pals.ttft_slo_s if math.isfinite(w.ttft_p99_s) else math.nan
                print(
                    f"   seed {seed} win {k:3d} {what:10s} itl {w.itl_p99_s / pals.itl_slo_s:4.2f}"
                    f" ttft {ttft:4.2f} | pals {pc:5.0f} W b{pb:5.0f}{other}"
                )
    print(f"total positive excess {total_excess}")


if __name__ == "__main__":
    main()
