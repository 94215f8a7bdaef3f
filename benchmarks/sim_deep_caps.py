"""Deep-cap response of the simulated H100 under each physics variant (docs/simulator.md).

Part 1, single steps of Llama-3.1-8B on one H100 at each cap: a compute-bound step (a full
8192-token prefill chunk) and a decode-bound step (8 decoders with 1000 tokens of context each).
Throughput is relative to the 700 W step; power is the step's average draw.

Part 2, a node at light load (Poisson at ``--load`` of its saturated capacity, chat lengths):
tokens per joule and ITL median at each cap, relative to 700 W.

Part 3, the node saturated at max_num_seqs=256: throughput, power and tokens per joule at each
cap, relative to 700 W.

    .venv/bin/python benchmarks/sim_deep_caps.py [--duration-s 120] [--load 0.2]
"""

from __future__ import annotations

import argparse
import time

from pals_core.sim import (
    PHYSICS_VARIANTS,
    PoissonWorkload,
    SaturatingWorkload,
    build_sim_node,
    model_profile,
)
from pals_core.sim.node import measure_saturated
from pals_core.sim.physics import solve_clock

CAPS_W = (200.0, 300.0, 400.0, 500.0, 700.0)
STEPS = {
    "compute-bound (prefill 8192 tok)": (0, 0, 8192),
    "decode-bound (8 x 1000 ctx)": (8, 8000, 0),
}


def step_table(physics: str) -> None:
    node = build_sim_node("llama-3.1-8b", "H100-SXM", 1, physics=physics)
    gpu = node.gpus[0]
    coef = node.engine._coef
    print(f"\n[{physics}] H100-SXM, Llama-3.1-8B single steps")
    print(f"{'step':34s} {'cap W':>6s} {'clock':>6s} {'tput':>6s} {'power W':>8s}")
    for name, (n_dec, ctx, n_pf) in STEPS.items():
        fixed_s, mem_s, cmp_s = coef.work(n_dec, ctx, n_pf)
        full = solve_clock(fixed_s, mem_s, cmp_s, gpu.power, 700.0 * gpu.spec.cap_target_frac)
        for cap_w in CAPS_W:
            target_w = cap_w * gpu.spec.cap_target_frac
            f, t_s, e_j = solve_clock(fixed_s, mem_s, cmp_s, gpu.power, target_w)
            power_w = gpu.power.floor_w + e_j / t_s
            print(f"{name:34s} {cap_w:6.0f} {f:6.3f} {full[1] / t_s:6.3f} {power_w:8.1f}")


def light_load(physics: str, duration_s: float, load: float) -> None:
    capacity = build_sim_node("llama-3.1-8b", physics=physics, seed=3).max_throughput_tok_s()
    rate = load * capacity / model_profile("llama-3.1-8b").chat_output_mean_tok
    print(
        f"\n[{physics}] light load: Poisson {rate:.2f} req/s ({load:.0%} of {capacity:.0f} tok/s)"
    )
    print(
        f"{'cap W':>6s} {'tok/s':>8s} {'power W':>8s} {'tok/J':>7s} {'vs 700':>7s}"
        f" {'ITL p50 ms':>10s}"
    )
    rows = []
    for cap_w in CAPS_W:
        node = build_sim_node(
            "llama-3.1-8b", workload=PoissonWorkload(rate), seed=3, physics=physics
        )
        node.gpus.set_power_limit_w(0, cap_w)
        node.clock.sleep(30.0)
        m0, e0 = node.engine.metrics(), node.exact_energy_j()
        node.clock.sleep(duration_s)
        m1, e1 = node.engine.metrics(), node.exact_energy_j()
        tokens = m1.generation_tokens_total - m0.generation_tokens_total
        itl = m1.inter_token_latency_seconds
        rows.append((cap_w, tokens / duration_s, (e1 - e0) / duration_s, tokens / (e1 - e0), itl))
    ref = rows[-1][3]
    for cap_w, tput, power_w, tok_j, itl in rows:
        print(
            f"{cap_w:6.0f} {tput:8.1f} {power_w:8.1f} {tok_j:7.3f} {tok_j / ref:7.2f} "
            f"{itl.quantile(0.5) * 1e3:10.1f}"
        )


def saturated(physics: str) -> None:
    print(f"\n[{physics}] saturated at max_num_seqs=256")
    print(f"{'cap W':>6s} {'tok/s':>8s} {'tput':>6s} {'power W':>8s} {'tok/J':>7s} {'vs 700':>7s}")
    rows = []
    for cap_w in CAPS_W:
        node = build_sim_node(
            "llama-3.1-8b", workload=SaturatingWorkload(), seed=3, physics=physics
        )
        node.gpus.set_power_limit_w(0, cap_w)
        state = measure_saturated(node)
        rows.append((cap_w, state.throughput_tok_s, state.power_w_per_gpu))
    top_tput, top_power = rows[-1][1], rows[-1][2]
    for cap_w, tput, power_w in rows:
        ratio = (tput / power_w) / (top_tput / top_power)
        print(
            f"{cap_w:6.0f} {tput:8.0f} {tput / top_tput:6.3f} {power_w:8.1f} "
            f"{tput / power_w:7.2f} {ratio:7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=120.0)
    parser.add_argument("--load", type=float, default=0.2)
    args = parser.parse_args()
    start = time.perf_counter()
    for physics in PHYSICS_VARIANTS:
        step_table(physics)
        light_load(physics, args.duration_s, args.load)
        saturated(physics)
    print(f"\nwall {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
