"""Scale of `pals fleet`: N simulated nodes (real agents: PALS controller, simulated engine and
GPUs in real time) in this one process, against a gateway subprocess on PostgreSQL.

Once every node is online, measures over a window: this process's CPU (cores used, and
milliseconds of CPU per node per second), split into the simulation (advancing every node's
engine and GPUs to the present), the node ticks (observe, PALS, apply, telemetry: CPU per tick
of every node) and the rest (the event loop: streams, telemetry, registration); hence the CPU
the fleet needs at 10 ticks per second, which does not depend on how busy the machine is (on a
shared machine the process may get less CPU than it needs and tick late: the simulation work per
second stays the same, the ticks fall behind); the ticks per second (every node ticks on each,
goal 10), those that started late (more than 10 ms after their slot on the 0.1 s grid), those
skipped (a whole slot behind) and how late they started; the telemetry rows the gateway stored
per node per second (1.0 = every second); the time this process's threads spent waiting for a
CPU (runnable, not running); and the load average when the script starts and over the window
(on a busy machine the figures that depend on getting CPU in time -- ticks per second, late
ticks -- say more about the machine than about the fleet).

    .venv/bin/python benchmarks/fleet_scale.py [--nodes 200] [--window-s 60]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from benchmarks._fleet import running_fleet, wait_online
from benchmarks._harness import (
    admin_token,
    cpu_seconds,
    gateway_process,
    load_average,
    scratch_database,
)
from pals_core.agent.runner import LATENESS_BOUNDS_S

TICK_S = 0.1


def run_queue_wait_s() -> float:
    """Seconds this process's threads have spent runnable but waiting for a CPU (Linux
    schedstat; NaN elsewhere): how much the machine, not the fleet, held the ticks back."""
    total_ns = 0
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/schedstat") as stat:
                total_ns += int(stat.read().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return total_ns / 1e9


def lateness_quantile(counts: list[int], q: float) -> str:
    """The bucket bound under which a fraction ``q`` of the ticks started (from the control
    thread's lateness counts)."""
    total = sum(counts)
    if total == 0:
        return "n/a"
    seen = 0
    for bound_s, n in zip(LATENESS_BOUNDS_S, counts, strict=False):
        seen += n
        if seen >= q * total:
            return f"<= {1000 * bound_s:g} ms"
    return f"> {1000 * LATENESS_BOUNDS_S[-1]:g} ms"


def stored_since(database_url: str, since: datetime) -> int:
    from gridlink.db.engine import build_engine, build_sessionmaker
    from gridlink.models.telemetry import TelemetrySample

    engine = build_engine(database_url)
    try:
        with build_sessionmaker(engine)() as session:
            stmt = select(func.count()).select_from(TelemetrySample)
            return int(session.scalar(stmt.where(TelemetrySample.ts >= since)) or 0)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--telemetry-batch-s", type=float, default=5.0)
    args = parser.parse_args()
    load_start = load_average()
    with scratch_database("fleet_scale") as url, gateway_process(url) as gateway:
        token = admin_token(url)
        with running_fleet(
            str(args.nodes), gateway.base_url, token, telemetry_batch_s=args.telemetry_batch_s
        ) as agent:
            online_s = wait_online(agent)
            time.sleep(5)
            control = agent.control
            ticks0, late0 = control.ticks, control.late_ticks
            skipped0, lateness0 = control.skipped_ticks, list(control.lateness)
            load_window = load_average()
            sim_cpu0, nodes_cpu0 = control.clock_cpu_s, control.nodes_cpu_s
            cpu0, wall0 = time.process_time(), time.monotonic()
            queued0 = run_queue_wait_s()
            gw0 = cpu_seconds(gateway.pid)
            since = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
            time.sleep(args.window_s)
            cpu1, wall1 = time.process_time(), time.monotonic()
            queued_s = run_queue_wait_s() - queued0
            gw1 = cpu_seconds(gateway.pid)
            until = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
            ticks, late = control.ticks - ticks0, control.late_ticks - late0
            skipped = control.skipped_ticks - skipped0
            lateness = [b - a for a, b in zip(lateness0, control.lateness, strict=True)]
            max_late_s = control.max_lateness_s
            load_end = load_average()
            sim_cpu_s = control.clock_cpu_s - sim_cpu0
            nodes_cpu_s = control.nodes_cpu_s - nodes_cpu0
            time.sleep(args.telemetry_batch_s * 2 + 2)  # let the last batches land
            rows = stored_since(url, since) - stored_since(url, until)
    span_s = wall1 - wall0
    cores = (cpu1 - cpu0) / span_s
    seconds = (until - since).total_seconds()
    print(f"nodes                      {args.nodes}")
    print(f"online after               {online_s:.1f} s")
    print(f"load average (1/5/15 min)  start {load_start}; window {load_window} to {load_end}")
    print(f"window                     {span_s:.1f} s")
    print(f"fleet process CPU          {cores:.3f} cores")
    print(
        f"waited for a CPU           {queued_s / span_s:.3f} thread-s per s (runnable, not "
        "running: the machine's share of any lateness)"
    )
    print(
        f"CPU per node               {1000 * cores / args.nodes:.2f} ms per node-second "
        f"(at {ticks / span_s:.2f} ticks/s)"
    )
    per_tick_s = nodes_cpu_s / max(1, ticks)
    sim_cores = sim_cpu_s / span_s
    network_cores = (cpu1 - cpu0 - sim_cpu_s - nodes_cpu_s) / span_s
    projected = per_tick_s / TICK_S + sim_cores + network_cores
    print(f"simulation                 {sim_cores:.3f} cores")
    print(f"node ticks                 {1000 * per_tick_s:.1f} ms per tick of every node")
    print(f"network side (event loop)  {network_cores:.3f} cores")
    print(
        f"projected at 10 ticks/s    {projected:.3f} cores, {1000 * projected / args.nodes:.2f} "
        "ms per node per second"
    )
    print(
        f"control ticks              {ticks} ({ticks / span_s:.2f}/s per node; expected "
        f"{1 / TICK_S:.0f}/s), {skipped} skipped"
    )
    print(
        f"late ticks                 {late} ({100 * late / max(1, ticks):.1f} % started more "
        f"than {1000 * control.late_after_s:g} ms after their slot)"
    )
    print(
        f"tick start delay           p50 {lateness_quantile(lateness, 0.5)}, p99 "
        f"{lateness_quantile(lateness, 0.99)}, max {1000 * max_late_s:.0f} ms (whole run)"
    )
    print(f"telemetry rows per node-s  {rows / (args.nodes * seconds):.3f} (1.0 = every second)")
    print(f"gateway process CPU        {(gw1 - gw0) / span_s:.3f} cores")


if __name__ == "__main__":
    main()
