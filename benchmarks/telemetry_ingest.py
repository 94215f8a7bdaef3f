"""Sustained telemetry ingest into PostgreSQL through the gateway's API.

Setup: a fresh PostgreSQL database; the gateway as a subprocess (``python -m gridlink serve``,
default settings) on loopback; N nodes registered through the API, each posting with its own
node token. Then for D seconds, C concurrent clients (asyncio httpx) each post batches of B
samples to ``POST /v1/nodes/{id}/telemetry`` back to back. Bodies are encoded before the clock
starts, so the figure is the gateway's (parse, validate, insert, commit, audit), not the
client's JSON encoding. The accepted count is checked against ``count(*)`` in the database.

    .venv/bin/python benchmarks/telemetry_ingest.py [--nodes 8] [--concurrency 8]
        [--batch 1000] [--duration-s 20]

Prints samples/s sustained and the per-request latency (p50/p99).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from _harness import (
    admin_token,
    cpu_seconds,
    gateway_process,
    libpq,
    load_average,
    node_tokens,
    percentile,
    scratch_database,
)


def bodies(count: int, batch: int, start: datetime) -> list[bytes]:
    """``count`` request bodies of ``batch`` samples each, 1 ms apart, all in the past."""
    out = []
    for b in range(count):
        base = start + timedelta(milliseconds=b * batch)
        samples = [
            {
                "ts": (base + timedelta(milliseconds=i)).isoformat(),
                "power_w": 4000.0 + (i % 50),
                "throughput_tok_s": 9000.0 + (i % 70),
                "power_cap_w": 600.0,
                "batch_limit": 256,
                "requests_waiting": i % 3,
            }
            for i in range(batch)
        ]
        out.append(json.dumps({"samples": samples}).encode())
    return out


async def client_loop(
    http: httpx.AsyncClient,
    url: str,
    token: str,
    payloads: list[bytes],
    deadline: float,
    latencies: list[float],
    counts: list[int],
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    i = 0
    while time.monotonic() < deadline:
        body = payloads[i % len(payloads)]
        i += 1
        t0 = time.monotonic()
        response = await http.post(url, content=body, headers=headers)
        latencies.append(time.monotonic() - t0)
        if response.status_code != 201:
            raise RuntimeError(f"ingest failed: {response.status_code} {response.text[:300]}")
        counts.append(response.json()["accepted"])


async def run(
    base_url: str, tokens: dict[int, str], args: argparse.Namespace
) -> tuple[int, float, list[float]]:
    node_ids = list(tokens)
    # Each client gets its own time range so samples stay distinct and in order per node.
    history_start = datetime.now(UTC) - timedelta(days=1)
    per_client = max(4, int(args.duration_s * 20 / args.concurrency) + 4)
    payloads = [
        bodies(per_client, args.batch, history_start + timedelta(hours=c))
        for c in range(args.concurrency)
    ]
    latencies: list[float] = []
    counts: list[int] = []
    limits = httpx.Limits(max_connections=args.concurrency + 2)
    async with httpx.AsyncClient(
        limits=limits, timeout=httpx.Timeout(60.0), trust_env=False
    ) as http:
        # Warm up: one request per client, not counted.
        for c in range(args.concurrency):
            node_id = node_ids[c % len(node_ids)]
            warm = bodies(1, 10, history_start - timedelta(hours=1 + c))[0]
            await http.post(
                f"{base_url}/v1/nodes/{node_id}/telemetry",
                content=warm,
                headers={
                    "Authorization": f"Bearer {tokens[node_id]}",
                    "Content-Type": "application/json",
                },
            )
        started = time.monotonic()
        deadline = started + args.duration_s
        await asyncio.gather(
            *(
                client_loop(
                    http,
                    f"{base_url}/v1/nodes/{node_ids[c % len(node_ids)]}/telemetry",
                    tokens[node_ids[c % len(node_ids)]],
                    payloads[c],
                    deadline,
                    latencies,
                    counts,
                )
                for c in range(args.concurrency)
            )
        )
        elapsed = time.monotonic() - started
    return sum(counts), elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--duration-s", type=float, default=20.0)
    args = parser.parse_args()

    with scratch_database("gridlink_bench_ingest") as url:
        admin = admin_token(url)
        with gateway_process(url) as gateway:
            node_ids = []
            for n in range(args.nodes):
                response = httpx.post(
                    f"{gateway.base_url}/v1/nodes",
                    headers={"Authorization": f"Bearer {admin}"},
                    json={
                        "name": f"bench-node-{n}",
                        "gpu_type": "H100-SXM",
                        "gpu_count": 8,
                        "gpu_min_cap_w": 200.0,
                        "gpu_max_cap_w": 700.0,
                    },
                    trust_env=False,
                )
                response.raise_for_status()
                node_ids.append(response.json()["id"])
            tokens = node_tokens(url, node_ids)
            load = load_average()
            cpu_before = cpu_seconds(gateway.pid)
            accepted, elapsed_s, latencies = asyncio.run(run(gateway.base_url, tokens, args))
            gateway_cpu_s = cpu_seconds(gateway.pid) - cpu_before
        with psycopg.connect(libpq(url)) as conn:
            stored = conn.execute("SELECT count(*) FROM telemetry_samples").fetchone()[0]  # type: ignore[index]
    warmup = 10 * args.concurrency
    print(
        f"nodes: {args.nodes}  concurrency: {args.concurrency}  batch: {args.batch} samples  "
        f"duration: {elapsed_s:.1f} s"
    )
    print(f"machine load average at start: {load} (1/5/15 min)")
    print(f"accepted: {accepted} samples in {len(latencies)} requests; stored: {stored - warmup}")
    print(f"sustained: {accepted / elapsed_s:,.0f} samples/s")
    print(
        f"request latency (ms): p50 {percentile(latencies, 50) * 1000:.1f}  "
        f"p99 {percentile(latencies, 99) * 1000:.1f}"
    )
    print(
        f"gateway CPU: {gateway_cpu_s:.1f} s over the run "
        f"({gateway_cpu_s / elapsed_s:.0%} of a core)"
    )
    if stored - warmup != accepted:
        raise SystemExit(f"mismatch: accepted {accepted} but stored {stored - warmup}")


if __name__ == "__main__":
    main()
