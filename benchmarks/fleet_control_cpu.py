"""The control side of `pals fleet` alone: N simulated nodes (PALS controller, simulated engine and
GPUs), each holding an allocation that binds, ticked 10 times per simulated second as the
control thread ticks them, with no gateway and no pacing (the simulation runs as fast as it can).

Prints the CPU the simulation and the node ticks need per second of real time at 10 ticks/s
(process CPU time, so it does not depend on how busy the machine is beyond cache effects), the
CPU per node, and the CPU of the costliest tick of each phase of a control period (the nodes'
decisions are staggered over the period's ticks, so no tick carries them all).

    .venv/bin/python benchmarks/fleet_control_cpu.py [--nodes 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from benchmarks._harness import load_average
from pals_core.agent.fleet import FleetOptions, build_fleet, parse_spec
from pals_core.agent.trajectory import Segment, Trajectory

TICK_S = 0.1
WALL0_S = 1.8e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    options = FleetOptions(profile_dir=Path("var/fleet-profiles"))
    nodes, clock = build_fleet(parse_spec(str(args.nodes)), options)
    gc.freeze()  # as the agent does before its loops start
    sim = clock.simulation
    t_s = sim.now_s()

    def run(seconds: float, per_tick: list[float] | None = None) -> tuple[float, float]:
        nonlocal t_s
        sim_cpu_s = nodes_cpu_s = 0.0
        for _ in range(round(seconds / TICK_S)):
            t_s += TICK_S
            cpu0 = time.thread_time()
            sim.advance_to(t_s)
            cpu1 = time.thread_time()
            for node in nodes:
                node.contact(WALL0_S + t_s)
                node.tick(t_s, WALL0_S + t_s, WALL0_S + t_s - clock.counters_age_s(t_s))
                node.take_samples()
            cpu2 = time.thread_time()
            sim_cpu_s += cpu1 - cpu0
            nodes_cpu_s += cpu2 - cpu1
            if per_tick is not None:
                per_tick.append(cpu2 - cpu0)
        return sim_cpu_s, nodes_cpu_s

    run(10.0)  # warm up unconstrained, then an allocation half-way down each node's room
    for i, node in enumerate(nodes):
        node.node_id = i + 1
        spec = node.spec
        used_w = max(node.status.power_w, spec.min_power_w)
        power_w = spec.min_power_w + 0.5 * (used_w - spec.min_power_w)
        segment = Segment(WALL0_S - 10, WALL0_S + 1e6, power_w)
        node.accept_trajectory(Trajectory(1, (segment,)), WALL0_S + t_s)
    run(5.0)
    per_tick: list[float] = []
    sim_cpu_s, nodes_cpu_s = run(args.seconds, per_tick)
    period = options.loop.ticks_per_period
    worst = [max(per_tick[i::period]) for i in range(period)]
    sim_cores, tick_cores = sim_cpu_s / args.seconds, nodes_cpu_s / args.seconds
    print(f"nodes                     {args.nodes} (load average {load_average()})")
    print(f"simulation                {sim_cores:.3f} cores")
    print(
        f"node ticks                {tick_cores:.3f} cores "
        f"({1000 * nodes_cpu_s / len(per_tick):.1f} ms per tick of every node)"
    )
    print(
        f"control side              {sim_cores + tick_cores:.3f} cores, "
        f"{1000 * (sim_cores + tick_cores) / args.nodes:.2f} ms per node per second"
    )
    print(
        "costliest tick by phase   "
        + ", ".join(f"{1000 * w:.0f}" for w in worst)
        + f" ms (a tick is {1000 * TICK_S:.0f} ms)"
    )


if __name__ == "__main__":
    main()
