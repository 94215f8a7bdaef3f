"""Latency of a curtailment POST (plan, allocate the fleet, store a budget version, commit)
with N registered nodes on PostgreSQL, and the gateway's RSS across many versions.

Setup: a fresh PostgreSQL database with N nodes of varied size, tier and power curve (so each
budget splits differently and every node's trajectory has its own pieces); the gateway as a
subprocess on loopback. Then R curtailments are POSTed one after another, each with its own
start, duration and limit, so every POST makes a new version with more segments than the last.
Latency = the client-side time of the POST (201 response). RSS of the gateway is read before
the first and after the last POST.

    .venv/bin/python benchmarks/curtailment_post.py [--nodes 1000] [--posts 40]

Prints p50/p99/max latency, the segments of the last version and the RSS change.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from _harness import (
    create_tokens,
    gateway_process,
    libpq,
    load_average,
    percentile,
    rss_mb,
    scratch_database,
)


def seed(conninfo: str, nodes: int) -> None:
    """``nodes`` nodes, heard from now, with 1-8 GPUs, tiers 0-3 and concave curves."""
    rows = []
    for i in range(nodes):
        gpus = 1 + i % 8
        low, high = gpus * 200.0 + 300, gpus * 700.0 + 300
        curve = (
            f"[[{low}, 0], [{(low + high) / 2}, {gpus * 900 + i % 17}], [{high}, {gpus * 1200}]]"
        )
        rows.append((f"bench-node-{i}", gpus, low, high, curve, i % 4))
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO nodes (name, gpu_type, gpu_count, min_power_w, max_power_w, "
            "gpu_min_cap_w, gpu_max_cap_w, idle_power_w, curve, flexibility_tier, status, "
            "last_seen_at, created_at, updated_at) VALUES (%s, 'H100-SXM', %s, %s, %s, 200, 700, "
            "300, %s, %s, 'online', now(), now(), now())",
            rows,
        )


def fleet_env(nodes: int) -> tuple[float, dict[str, str]]:
    """The seeded fleet's maximum (kW) and the gateway settings that fit it: a facility limit
    above the fleet, an overhead, and nodes never marked stale or offline while a run lasts."""
    fleet_kw = sum((1 + i % 8) * 0.7 + 0.3 for i in range(nodes))
    return fleet_kw, {
        "GRIDLINK_FACILITY_MAX_KW": str(round(fleet_kw * 1.2)),
        "GRIDLINK_FACILITY_OVERHEAD_KW": str(round(fleet_kw * 0.1)),
        "GRIDLINK_NODE_STALE_AFTER_S": "86400",
        "GRIDLINK_NODE_OFFLINE_AFTER_S": "172800",
    }


def soak(http: httpx.Client, curtailment_id: int, fleet_kw: float, versions: int) -> list[float]:
    """``versions`` PATCHes of one curtailment's limit (each stores a version of the same size);
    returns their latencies (ms)."""
    latencies = []
    for k in range(versions):
        limit_kw = round(fleet_kw * (0.6 + 0.05 * (k % 2)), 1)
        t0 = time.perf_counter()
        response = http.patch(
            f"/v1/curtailments/{curtailment_id}", json={"limit_kw": limit_kw}, timeout=120
        )
        latencies.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"PATCH {k}: {response.status_code} {response.text[:300]}")
        curtailment_id = response.json()["id"]
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=40)
    parser.add_argument(
        "--soak-versions",
        type=int,
        default=0,
        help="then this many more versions of constant size (PATCHing the last curtailment), "
        "printing the gateway RSS before and after them",
    )
    args = parser.parse_args()

    with scratch_database("gridlink_bench_post") as url:
        seed(libpq(url), args.nodes)
        (admin,) = create_tokens(url, [("admin", None)])
        headers = {"Authorization": f"Bearer {admin}"}
        fleet_max_kw, env = fleet_env(args.nodes)
        with (
            gateway_process(url, **env) as gateway,
            httpx.Client(base_url=gateway.base_url, headers=headers, trust_env=False) as http,
        ):
            rss_start = rss_mb(gateway.pid)
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            latencies = []
            for k in range(args.posts):
                body = {
                    "name": f"bench {k}",
                    "start": (now + timedelta(minutes=10 + 17 * k)).isoformat(),
                    "duration_s": 900 + 60 * (k % 7),
                    "limit_kw": round(fleet_max_kw * (0.55 + 0.01 * (k % 40)), 1),
                }
                t0 = time.perf_counter()
                response = http.post("/v1/curtailments", json=body, timeout=120)
                latencies.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 201:
                    raise SystemExit(f"POST {k}: {response.status_code} {response.text[:300]}")
            rss_end = rss_mb(gateway.pid)
            soak_ms = soak(http, response.json()["id"], fleet_max_kw, args.soak_versions)
            rss_soaked = rss_mb(gateway.pid)
            latest = http.get("/v1/budgets", params={"limit": 1}, timeout=120).json()[0]
            # a whole version as JSON (10,000 nodes: ~130,000 pieces) takes a while on a busy box
            version = http.get(f"/v1/budgets/{latest['id']}", timeout=300).json()
            pieces = sum(len(s) for s in version["allocations"].values())

    print(f"curtailment POST with {args.nodes} nodes, {args.posts} posts (load {load_average()})")
    print(
        f"  latency ms: p50 {percentile(latencies, 50):.0f}  p99 {percentile(latencies, 99):.0f}"
        f"  max {max(latencies):.0f}  (first {latencies[0]:.0f}, last {latencies[-1]:.0f})"
    )
    print(
        f"  last version: {len(version['trajectory'])} segments, {pieces} node pieces"
        f" ({pieces / max(args.nodes, 1):.1f} per node)"
    )
    print(f"  gateway RSS MB: {rss_start:.0f} -> {rss_end:.0f}")
    if soak_ms:
        print(
            f"  then {len(soak_ms)} versions of constant size: PATCH p50 "
            f"{percentile(soak_ms, 50):.0f} ms, p99 {percentile(soak_ms, 99):.0f} ms; gateway RSS "
            f"MB {rss_end:.0f} -> {rss_soaked:.0f} ({(rss_soaked / rss_end - 1) * 100:+.0f} %)"
        )


if __name__ == "__main__":
    main()
