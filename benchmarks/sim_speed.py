"""Simulator speed: one simulated hour of a busy 8-GPU node, stepped like the control loop.

Two llama-3.1-70b engines (TP4 each) share one SimClock; each gets Poisson load at 60% of its
saturated capacity; the clock advances in 0.1 s ticks and every tick reads both engines' metrics
and every GPU's power and energy (what ``run_control_loop`` does). Prints simulated seconds per
wall second, the wall time of the hour and the peak RSS.

    .venv/bin/python benchmarks/sim_speed.py [--sim-s 3600]
"""

from __future__ import annotations

import argparse
import resource
import time

from pals_core.sim import PoissonWorkload, SimClock, build_sim_node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-s", type=float, default=3600.0)
    parser.add_argument("--tick-s", type=float, default=0.1)
    parser.add_argument("--load", type=float, default=0.6)
    args = parser.parse_args()

    clock = SimClock()
    nodes = []
    for seed in (1, 2):
        node = build_sim_node(
            "llama-3.1-70b", "H100-SXM", 4, workload=PoissonWorkload(0.0), seed=seed, clock=clock
        )
        capacity_tok_s = node.max_throughput_tok_s()
        rate = args.load * capacity_tok_s / node.model.chat_output_mean_tok
        node.workload.set_rate(rate)
        print(f"engine {seed}: capacity {capacity_tok_s:.0f} tok/s, offered {rate:.2f} req/s")
        nodes.append(node)

    ticks = round(args.sim_s / args.tick_s)
    start = time.perf_counter()
    power_sum = 0.0
    for _ in range(ticks):
        clock.sleep(args.tick_s)
        for node in nodes:
            node.engine.metrics()
            power_sum += sum(node.gpus.get_power_w())
            node.gpus.get_energy_j()
    wall_s = time.perf_counter() - start

    tokens = sum(n.engine.metrics().generation_tokens_total for n in nodes)
    energy_j = sum(sum(n.gpus.get_energy_j()) for n in nodes)
    steps = sum(n.engine.stats().steps for n in nodes)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"simulated {args.sim_s:.0f} s of 8 GPUs in {wall_s:.2f} s wall")
    print(f"speed: {args.sim_s / wall_s:.0f} simulated s per wall s ({steps} engine steps)")
    print(
        f"throughput {tokens / args.sim_s:.0f} tok/s, mean power {power_sum / ticks:.0f} W, "
        f"{tokens / energy_j:.3f} tok/J"
    )
    print(f"peak RSS: {peak_rss_mib:.1f} MiB")


if __name__ == "__main__":
    main()
