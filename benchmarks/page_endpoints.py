"""What the facility page asks the gateway for, timed with 200 nodes and a week of telemetry.

Setup: a fresh PostgreSQL database with N nodes and D days of telemetry (one sample per node
per minute, generated in the database), a curtailment a day, and the gateway as a subprocess
(``python -m gridlink serve``). Then each request the page makes on load (the shell, the
session check, the nodes/events/form fragments, the chart history for 6 h, 24 h and 7 days) is
timed R times from an HTTP client, and so is the time to the first ``facility`` event of the
live feed.

    .venv/bin/python benchmarks/page_endpoints.py [--nodes 200] [--days 7] [--repeat 5]

Prints the median and worst time per request. The browser's own figures (first paint, time to
all rows and the chart) come from ``pytest tests/gridlink/web/test_page_scale.py -s``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from _harness import admin_token, gateway_process, libpq, load_average, scratch_database


def seed(url: str, nodes: int, days: int) -> int:
    now = datetime.now(UTC)
    with psycopg.connect(libpq(url)) as conn:
        conn.execute(
            """
            INSERT INTO nodes (name, gpu_type, gpu_count, min_power_w, max_power_w,
                               gpu_min_cap_w, gpu_max_cap_w, idle_power_w, curve,
                               flexibility_tier, status, last_seen_at, created_at, updated_at)
            SELECT 'node-' || i, 'H100-SXM', 8, 2000, 6000, 200, 700, 400, '[]', 1, 'online',
                   %(now)s, %(now)s, %(now)s
            FROM generate_series(1, %(nodes)s) AS i
            """,
            {"now": now, "nodes": nodes},
        )
        conn.execute(
            """
            INSERT INTO telemetry_samples (node_id, ts, power_w, throughput_tok_s, qos_violation)
            SELECT n.id, g.ts, 3000 + 1200 * sin(2 * pi() * extract(epoch from g.ts) / 86400.0),
                   9000, false
            FROM nodes n CROSS JOIN generate_series(%(start)s, %(now)s, interval '1 minute') g(ts)
            ORDER BY g.ts, n.id  -- in time order, as telemetry arrives (for the BRIN index)
            """,
            {"start": now - timedelta(days=days), "now": now},
        )
        row = conn.execute("SELECT count(*) FROM telemetry_samples").fetchone()
    # What autovacuum does to an append-only table after a week of inserts: summarize the BRIN
    # ranges (unsummarized ranges are read in full) and refresh the planner's statistics.
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE telemetry_samples")
    return int(row[0]) if row else 0


def first_facility_event_s(client: httpx.Client) -> float:
    started = time.perf_counter()
    with client.stream("GET", "/ui/stream") as response:
        for line in response.iter_lines():
            if line == "event: facility":
                return time.perf_counter() - started
    raise RuntimeError("the live feed ended without a facility event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with scratch_database("page_bench") as url:
        started = time.perf_counter()
        rows = seed(url, args.nodes, args.days)
        print(f"seeded {args.nodes} nodes, {rows} samples in {time.perf_counter() - started:.1f} s")
        token = admin_token(url)
        with gateway_process(url) as gateway:
            headers = {"Authorization": f"Bearer {token}"}
            client = httpx.Client(base_url=gateway.base_url, headers=headers, timeout=60)
            now = datetime.now(UTC)
            for day in range(args.days):
                start = now - timedelta(days=day + 1, hours=2)
                body = {"start": start.isoformat(), "duration_s": 7200, "reduction_pct": 20}
                client.post("/v1/curtailments", json=body).raise_for_status()
            paths = [
                "/",
                "/ui/session",
                "/ui/fragments/nodes",
                "/ui/fragments/events",
                "/ui/fragments/form",
                "/ui/history?hours=6&ahead_h=6",
                "/ui/history?hours=24&ahead_h=6",
                f"/ui/history?hours={24 * args.days}&ahead_h=6",
            ]
            print(f"load average {load_average()}; {args.repeat} runs each (ms):")
            for path in paths:
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    client.get(path).raise_for_status()
                    times.append((time.perf_counter() - t0) * 1000)
                print(f"  {path:40s} median {statistics.median(times):7.1f}  max {max(times):7.1f}")
            feed = [first_facility_event_s(client) * 1000 for _ in range(args.repeat)]
            print(
                f"  {'/ui/stream (first facility event)':40s} median "
                f"{statistics.median(feed):7.1f}  max {max(feed):7.1f}"
            )
            client.close()


if __name__ == "__main__":
    main()
