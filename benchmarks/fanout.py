"""Fan-out latency of the allocation streams: from a committed budget version to every
subscribed node having it.

Setup: a fresh PostgreSQL database with N nodes; the gateway as a subprocess
(``python -m gridlink serve``) on loopback; N subscribers, one per node, in another process, each
following its stream with ``gridlink.streams.client.follow_allocation`` (httpx, asyncio). Then R
rounds: a new budget version (all allocations, one matrix row) is committed by this process, a
separate replica as far as the gateway knows, with the ``NOTIFY gridlink_budget`` in the same
transaction, so the gateway hears of it exactly at commit. Latency per delivery = the time the
subscriber has the parsed trajectory minus the time just before COMMIT (same machine clock).

    .venv/bin/python benchmarks/fanout.py [--subscribers 1000] [--rounds 20] [--interval-s 0.5]

Prints p50/p99/max of all deliveries and of the per-round "last node has it" latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from _harness import (
    cpu_seconds,
    gateway_process,
    libpq,
    load_average,
    node_tokens,
    percentile,
    scratch_database,
)
from _telemetry_load import telemetry_load

T0 = datetime.now(UTC).replace(microsecond=0)


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def seed(conninfo: str, nodes: int) -> list[int]:
    with psycopg.connect(conninfo) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO nodes (name, gpu_type, gpu_count, min_power_w, max_power_w, "
                "idle_power_w, curve, flexibility_tier, status, last_seen_at, created_at, "
                "updated_at) VALUES (%s, 'H100-SXM', 1, 200, 700, 0, '[]', 1, 'online', now(), "
                "now(), now())",
                [(f"bench-node-{i}",) for i in range(nodes)],
            )
            cur.execute("SELECT id FROM nodes ORDER BY id")
            node_ids = [row[0] for row in cur.fetchall()]
        conn.commit()
    publish_version(conninfo, node_ids, 600.0)
    return node_ids


def publish_version(conninfo: str, node_ids: list[int], power_w: float) -> tuple[int, float]:
    """Commit a version with one segment per node and NOTIFY in the same transaction.
    Returns (version id, wall time just before COMMIT)."""
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO budget_versions (created_at, reason, inputs, trajectory) "
            "VALUES (now(), 'fanout benchmark', '{}', '[]') RETURNING id"
        )
        version_id = cur.fetchone()[0]  # type: ignore[index]
        from gridlink.budgets.matrix import AllocationMatrix, AllocationPiece

        start, end = T0, T0 + timedelta(hours=1)
        matrix = AllocationMatrix.from_pieces(
            AllocationPiece(node_id, start, end, power_w) for node_id in node_ids
        )
        cur.execute(
            "INSERT INTO budget_allocations (budget_version_id, node_count, matrix) "
            "VALUES (%s, %s, %s)",
            (version_id, len(node_ids), matrix.encode()),
        )
        cur.execute("SELECT pg_notify('gridlink_budget', %s)", (str(version_id),))
        t_commit = time.time()
        conn.commit()
    return version_id, t_commit


# -- subscriber process ----------------------------------------------------------------------


async def _follow(
    client: httpx.AsyncClient,
    base_url: str,
    node_id: int,
    token: str,
    receipts: dict[int, list[float]],
    ready: asyncio.Event,
    state: dict[str, int],
    total: int,
) -> None:
    from gridlink.streams.client import follow_allocation

    first = True
    async for update in follow_allocation(base_url, node_id, token, client=client):
        receipts.setdefault(update.version_id, []).append(time.time())
        if first:
            first = False
            state["ready"] += 1
            if state["ready"] == total:
                ready.set()


async def _worker(base_url: str, tokens: dict[int, str], duration_s: float) -> dict[str, Any]:
    node_ids = list(tokens)
    receipts: dict[int, list[float]] = {}
    ready = asyncio.Event()
    state = {"ready": 0}
    limits = httpx.Limits(max_connections=len(node_ids) + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(30.0, read=120.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        tasks = []
        for start in range(0, len(node_ids), 50):
            for node_id in node_ids[start : start + 50]:
                tasks.append(
                    asyncio.create_task(
                        _follow(
                            client,
                            base_url,
                            node_id,
                            tokens[node_id],
                            receipts,
                            ready,
                            state,
                            len(node_ids),
                        )
                    )
                )
            await asyncio.sleep(0.02)
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([waiter, *tasks], timeout=120, return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done()]
        if failed or not ready.is_set():
            print("FAILED", flush=True)
            if failed:
                failed[0].result()  # raises the subscriber's error
            raise RuntimeError("subscribers did not connect in time")
        print("READY", flush=True)
        await asyncio.sleep(duration_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {str(k): v for k, v in receipts.items()}


def worker_main(args: argparse.Namespace) -> None:
    with open(args.tokens_file) as f:
        tokens = {int(k): v for k, v in json.load(f).items()}
    _raise_fd_limit(len(tokens) + 100)
    try:
        import uvloop

        result = uvloop.run(_worker(args.base_url, tokens, args.duration_s))
    except ImportError:
        result = asyncio.run(_worker(args.base_url, tokens, args.duration_s))
    print(json.dumps(result), flush=True)


# -- driver ----------------------------------------------------------------------------------


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval-s", type=float, default=0.5)
    parser.add_argument(
        "--workers", type=int, default=1, help="subscriber processes (subscribers split evenly)"
    )
    parser.add_argument(
        "--telemetry-rate", type=float, default=0.0, help="telemetry samples/s sent meanwhile"
    )
    parser.add_argument("--telemetry-batch", type=int, default=50)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--tokens-file", help=argparse.SUPPRESS)
    parser.add_argument("--duration-s", type=float, help=argparse.SUPPRESS)
    return parser.parse_args()


def _start_subscribers(
    args: argparse.Namespace,
    base_url: str,
    tokens: dict[int, str],
    node_ids: list[int],
    scratch_dir: str,
) -> tuple[list[subprocess.Popen[str]], float]:
    """The subscriber processes (nodes split evenly), once every stream is connected, and the
    seconds that took."""
    duration_s = args.rounds * args.interval_s + 5.0
    token_files = []
    for w in range(args.workers):
        path = os.path.join(scratch_dir, f"tokens-{w}.json")
        with open(path, "w") as f:
            json.dump({n: tokens[n] for n in node_ids[w :: args.workers]}, f)
        token_files.append(path)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                "--base-url",
                base_url,
                "--tokens-file",
                token_files[w],
                "--duration-s",
                str(duration_s),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(args.workers)
    ]
    t_connect = time.monotonic()
    for worker in workers:
        assert worker.stdout is not None
        if worker.stdout.readline().strip() != "READY":
            raise RuntimeError("subscribers did not get ready")
    return workers, time.monotonic() - t_connect


@dataclass
class _Rounds:
    commits: dict[int, float] = field(default_factory=dict)
    """Budget version id -> time just before its COMMIT."""
    seconds: float = 0.0
    gateway_cpu_ms: float = 0.0
    """Per round."""
    worker_cpu_ms: float = 0.0
    load_before: str = ""
    telemetry_ms: list[float] = field(default_factory=list)


def _publish_rounds(
    args: argparse.Namespace,
    gateway_pid: int,
    base_url: str,
    conninfo: str,
    node_ids: list[int],
    tokens: dict[int, str],
    workers: list[subprocess.Popen[str]],
) -> _Rounds:
    """Commit a budget version every ``interval_s`` (with telemetry load meanwhile if asked),
    measuring the gateway's and the subscribers' CPU."""
    rounds = _Rounds()
    cpu_before = cpu_seconds(gateway_pid)
    worker_cpu_before = sum(cpu_seconds(w.pid) for w in workers)
    rounds.load_before = load_average()
    stop = threading.Event()
    senders = []
    if args.telemetry_rate > 0:
        senders = telemetry_load(
            base_url, tokens, args.telemetry_rate, args.telemetry_batch, stop, rounds.telemetry_ms
        )
        time.sleep(2.0)  # let the load settle before the first round
        rounds.telemetry_ms.clear()
    t_rounds = time.monotonic()
    for i in range(args.rounds):
        version_id, t_commit = publish_version(conninfo, node_ids, 500.0 - i)
        rounds.commits[version_id] = t_commit
        time.sleep(args.interval_s)
    rounds.seconds = time.monotonic() - t_rounds
    stop.set()
    for sender in senders:
        sender.join(timeout=30)
    rounds.gateway_cpu_ms = (cpu_seconds(gateway_pid) - cpu_before) * 1000 / args.rounds
    rounds.worker_cpu_ms = (
        (sum(cpu_seconds(w.pid) for w in workers) - worker_cpu_before) * 1000 / args.rounds
    )
    return rounds


def _collect_receipts(workers: list[subprocess.Popen[str]]) -> dict[str, list[float]]:
    """Budget version id -> the times its subscribers had it, from every subscriber process."""
    receipts: dict[str, list[float]] = {}
    for worker in workers:
        assert worker.stdout is not None
        for key, times in json.loads(worker.stdout.readline()).items():
            receipts.setdefault(key, []).extend(times)
        worker.wait(timeout=60)
    return receipts


def _report(
    args: argparse.Namespace,
    node_ids: list[int],
    rounds: _Rounds,
    receipts: dict[str, list[float]],
    connect_s: float,
) -> None:
    deliveries: list[float] = []
    round_max: list[float] = []
    missing = 0
    for version_id, t_commit in rounds.commits.items():
        got = receipts.get(str(version_id), [])
        missing += len(node_ids) - len(got)
        latencies = [(t - t_commit) * 1000 for t in got]
        deliveries.extend(latencies)
        if len(got) == len(node_ids):
            round_max.append(max(latencies))
    print(
        f"subscribers: {len(node_ids)} in {args.workers} process(es)  "
        f"rounds: {len(rounds.commits)}  interval: {args.interval_s}s"
    )
    print(
        f"machine: {os.cpu_count()} cores, load average {rounds.load_before} (1/5/15 min) at start"
    )
    print(
        f"CPU per round: gateway {rounds.gateway_cpu_ms:.0f} ms, subscribers "
        f"{rounds.worker_cpu_ms:.0f} ms (includes idle heartbeats and the interval's housekeeping)"
    )
    print(f"all {len(node_ids)} streams connected with their trajectory in {connect_s:.2f} s")
    print(f"deliveries: {len(deliveries)}  missing: {missing}")
    print(
        "commit -> node has it (ms): "
        f"p50 {percentile(deliveries, 50):.1f}  p99 {percentile(deliveries, 99):.1f}  "
        f"max {max(deliveries):.1f}"
    )
    telemetry_ms = rounds.telemetry_ms
    if telemetry_ms:
        sent = len(telemetry_ms) * args.telemetry_batch
        print(
            f"telemetry meanwhile: {sent / rounds.seconds:.0f} samples/s in {len(telemetry_ms)} "
            f"requests of {args.telemetry_batch}; request ms: p50 "
            f"{percentile(telemetry_ms, 50):.1f}  p99 {percentile(telemetry_ms, 99):.1f}  "
            f"max {max(telemetry_ms):.1f}"
        )
    if round_max:
        print(
            "commit -> every node has it, per round (ms): "
            f"p50 {percentile(round_max, 50):.1f}  p99 {percentile(round_max, 99):.1f}  "
            f"max {max(round_max):.1f}"
        )


def main() -> None:
    args = _parse_args()
    if args.worker:
        worker_main(args)
        return
    _raise_fd_limit(args.subscribers + 200)
    with (
        scratch_database("gridlink_bench_fanout") as url,
        tempfile.TemporaryDirectory() as scratch_dir,
    ):
        conninfo = libpq(url)
        node_ids = seed(conninfo, args.subscribers)
        env = {"GRIDLINK_SCHEDULER_ENABLED": "false", "GRIDLINK_STREAM_LIFETIME_S": "600"}
        with gateway_process(url, **env) as gateway:
            tokens = node_tokens(url, node_ids)
            workers, connect_s = _start_subscribers(
                args, gateway.base_url, tokens, node_ids, scratch_dir
            )
            rounds = _publish_rounds(
                args, gateway.pid, gateway.base_url, conninfo, node_ids, tokens, workers
            )
            receipts = _collect_receipts(workers)
    _report(args, node_ids, rounds, receipts, connect_s)


if __name__ == "__main__":
    main()
