"""The gateway's RSS over an hour of budget versions, on wall-clock time, at fleet size.

Setup: a fresh PostgreSQL database with N nodes of varied size, tier and curve (as in
``curtailment_post.py``); the gateway as a subprocess with its scheduler on (boundaries fire,
housekeeping runs); S of the nodes follow their allocation stream from a subscriber process
(``fanout.py --worker``; streams end every ``stream_lifetime_s`` and reconnect, as in
production); a light telemetry load (so demand estimates move). Then, for ``--duration-s`` of
wall clock, one operator action every ``--interval-s``: POST a curtailment starting 2-20 min
ahead for 5-15 min while fewer than ``--upcoming`` are pending, else PATCH the limit of a
pending one, and every sixth action DELETE one. Each action stores a version; the scheduler's
boundary firings store one only when the plan changes (with every version planning the whole
horizon, they do not). The set of curtailments stays the size a real hour has (they start, end
and drop out of the horizon), so versions stay of realistic size.

Why wall clock and not "as fast as possible": what could grow over an hour is tied to time as
much as to versions (stream reconnects, heartbeats, scheduler jobs, telemetry housekeeping,
boundary rows), and a version every 5 s is twice the fastest periodic source of versions in the
gateway (the node status job, every ``node_status_interval_s`` = 10 s, when a node changes).

Warm-up: the goal is the RSS at the end against the RSS *after warm-up*, so the same load runs
for ``--warmup-s`` (default 300 s: one stream lifetime, so every stream has reconnected once, and
about 60 versions) before the baseline is taken, and the hour is measured after it. In the first
minutes the gateway's RSS rises by about a tenth (new threads in the pool, pymalloc arenas and C
heap for the first requests of every kind, first-touched code pages) and then levels: measured
from the moment the load starts, that rise is counted as growth. Both are printed.

    .venv/bin/python benchmarks/version_soak.py [--nodes 1000] [--duration-s 3600] [--warmup-s 300]

Prints the gateway RSS when the load starts, after the warm-up, every ``--report-s`` and at the
end, with versions stored, deliveries to subscribers and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from _harness import (
    create_tokens,
    gateway_process,
    libpq,
    load_average,
    percentile,
    rss_mb,
    scratch_database,
)
from curtailment_post import fleet_env, seed
from fanout import node_tokens, telemetry_load

HERE = Path(__file__).resolve().parent
START_IN_S = (120, 1200)
"""A new curtailment starts this far ahead (uniform, seconds) ..."""
LENGTH_S = (300, 900)
"""... and lasts this long."""


class Operator:
    """One action per call on the curtailments, keeping about ``upcoming`` pending."""

    def __init__(
        self,
        http: httpx.Client,
        fleet_kw: float,
        upcoming: int,
        start_in_s: tuple[int, int] = START_IN_S,
        length_s: tuple[int, int] = LENGTH_S,
    ) -> None:
        self._http = http
        self._start_in_s = start_in_s
        self._length_s = length_s
        self._fleet_kw = fleet_kw
        self._upcoming = upcoming
        self._pending: dict[int, datetime] = {}  # id -> start
        self._rng = random.Random(10)
        self.latencies_ms: dict[str, list[float]] = {"POST": [], "PATCH": [], "DELETE": []}
        self.actions = 0

    def _timed(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        t0 = time.perf_counter()
        response = self._http.request(method, url, timeout=120, **kwargs)  # type: ignore[arg-type]
        self.latencies_ms[method].append((time.perf_counter() - t0) * 1000)
        if response.status_code not in (200, 201):
            raise SystemExit(f"{method} {url}: {response.status_code} {response.text[:300]}")
        return response

    def act(self) -> None:
        now = datetime.now(UTC)
        # a pending one that starts within a minute is left alone (it is about to be active)
        self._pending = {i: s for i, s in self._pending.items() if s > now + timedelta(minutes=1)}
        self.actions += 1
        limit_kw = round(self._fleet_kw * self._rng.uniform(0.5, 0.8), 1)
        if self.actions % 6 == 0 and self._pending:
            victim = self._rng.choice(sorted(self._pending))
            self._timed("DELETE", f"/v1/curtailments/{victim}")
            del self._pending[victim]
        elif len(self._pending) < self._upcoming:
            start = now + timedelta(seconds=self._rng.randint(*self._start_in_s))
            body = {
                "name": f"soak {self.actions}",
                "start": start.isoformat(),
                "duration_s": self._rng.randint(*self._length_s),
                "limit_kw": limit_kw,
            }
            created = self._timed("POST", "/v1/curtailments", json=body).json()
            self._pending[created["id"]] = start
        else:
            old = self._rng.choice(sorted(self._pending))
            updated = self._timed("PATCH", f"/v1/curtailments/{old}", json={"limit_kw": limit_kw})
            self._pending[updated.json()["id"]] = self._pending.pop(old)


def start_subscribers(
    base_url: str, tokens: dict[int, str], duration_s: float, folder: str
) -> subprocess.Popen[str]:
    path = os.path.join(folder, "tokens.json")
    with open(path, "w") as f:
        json.dump(tokens, f)
    worker = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "fanout.py"),
            "--worker",
            "--base-url",
            base_url,
            "--tokens-file",
            path,
            "--duration-s",
            str(duration_s),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    if worker.stdout.readline().strip() != "READY":
        raise SystemExit("subscribers did not get ready")
    return worker


def latest_version(http: httpx.Client) -> int:
    response = http.get("/v1/budgets", params={"limit": 1})
    response.raise_for_status()
    rows = response.json()
    return int(rows[0]["id"]) if rows else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--duration-s", type=float, default=3600.0, help="after the warm-up")
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=300.0,
        help="the load runs this long before the baseline RSS is taken",
    )
    parser.add_argument("--interval-s", type=float, default=5.0)
    parser.add_argument(
        "--start-in-s",
        type=int,
        nargs=2,
        default=START_IN_S,
        metavar=("MIN", "MAX"),
        help="a new curtailment starts this far ahead (uniform)",
    )
    parser.add_argument(
        "--length-s",
        type=int,
        nargs=2,
        default=LENGTH_S,
        metavar=("MIN", "MAX"),
        help="and lasts this long: with short ones (and GRIDLINK_REPORT_SETTLEMENT_DELAY_S "
        "small) events end and their reports are generated within the first minutes",
    )
    parser.add_argument("--upcoming", type=int, default=8)
    parser.add_argument("--telemetry-rate", type=float, default=200.0, help="samples/s")
    parser.add_argument("--report-s", type=float, default=60.0)
    parser.add_argument(
        "--traced",
        metavar="FILE",
        help="run the gateway as benchmarks/_traced_gateway.py and have it append where its "
        "memory is (C heap, Python objects; with GRIDLINK_TRACE_MALLOC=1 allocation sites) to "
        "FILE at the start and at every report",
    )
    args = parser.parse_args()
    launcher = None
    if args.traced:
        launcher = [sys.executable, str(HERE / "_traced_gateway.py")]
        os.environ["GRIDLINK_TRACE_FILE"] = os.path.abspath(args.traced)

    with scratch_database("gridlink_bench_soak") as url, tempfile.TemporaryDirectory() as folder:
        seed(libpq(url), args.nodes)
        (admin,) = create_tokens(url, [("admin", None)])
        fleet_kw, env = fleet_env(args.nodes)
        with (
            gateway_process(url, launcher, **env) as gateway,
            httpx.Client(
                base_url=gateway.base_url,
                headers={"Authorization": f"Bearer {admin}"},
                timeout=120,
                trust_env=False,
            ) as http,
        ):
            rss_boot = rss_mb(gateway.pid)
            node_ids = sorted(n["id"] for n in http.get("/v1/nodes").json())
            tokens = node_tokens(url, node_ids)
            operator = Operator(
                http,
                fleet_kw,
                args.upcoming,
                (args.start_in_s[0], args.start_in_s[1]),
                (args.length_s[0], args.length_s[1]),
            )
            operator.act()  # the first version, so subscribers have a trajectory to get
            worker = start_subscribers(
                gateway.base_url,
                {n: tokens[n] for n in node_ids[: args.subscribers]},
                args.warmup_s + args.duration_s + 30,
                folder,
            )
            stop = threading.Event()
            telemetry_ms: list[float] = []
            senders = []
            if args.telemetry_rate > 0:
                senders = telemetry_load(
                    gateway.base_url, tokens, args.telemetry_rate, 20, stop, telemetry_ms, 2
                )
            rss_load = rss_mb(gateway.pid)
            if args.traced:
                os.kill(gateway.pid, signal.SIGUSR1)  # where the memory is before any load
            print(
                f"version soak: {args.nodes} nodes, {args.subscribers} subscribers, "
                f"{args.telemetry_rate:.0f} telemetry samples/s, an action every "
                f"{args.interval_s:.0f} s for {args.duration_s:.0f} s after a "
                f"{args.warmup_s:.0f}-s warm-up",
                flush=True,
            )
            print(
                f"  RSS MB at boot {rss_boot:.0f}, with the first version and subscribers "
                f"{rss_load:.1f} (load {load_average()})",
                flush=True,
            )
            samples: list[tuple[float, float]] = []
            rss_start: float | None = None  # the baseline: after the warm-up
            t0 = time.monotonic()
            t_end = t0 + args.warmup_s + args.duration_s
            next_action, next_report = t0, t0 + min(args.report_s, args.warmup_s or args.report_s)
            while time.monotonic() < t_end:
                if time.monotonic() >= next_action:
                    operator.act()
                    next_action += args.interval_s
                if rss_start is None and time.monotonic() - t0 >= args.warmup_s:
                    rss_start = rss_mb(gateway.pid)
                    if args.traced:
                        os.kill(gateway.pid, signal.SIGUSR1)  # the baseline
                    print(
                        f"  t={time.monotonic() - t0:6.0f} s  warm-up done: RSS {rss_start:6.1f}"
                        f" MB ({(rss_start / rss_load - 1) * 100:+5.1f} % since the load began),"
                        f" the baseline  load {load_average()}",
                        flush=True,
                    )
                    next_report = time.monotonic() + args.report_s
                if time.monotonic() >= next_report:
                    rss = rss_mb(gateway.pid)
                    if args.traced:
                        os.kill(gateway.pid, signal.SIGUSR1)
                    base, since = (
                        (rss_start, "baseline") if rss_start is not None else (rss_load, "load")
                    )
                    if rss_start is not None:
                        samples.append((time.monotonic() - t0, rss))
                    print(
                        f"  t={time.monotonic() - t0:6.0f} s  versions {latest_version(http):5d}"
                        f"  RSS {rss:6.1f} MB ({(rss / base - 1) * 100:+5.1f} % since the "
                        f"{since})  load {load_average()}",
                        flush=True,
                    )
                    next_report += args.report_s
                time.sleep(max(0.0, min(next_action, next_report, t_end) - time.monotonic()))
            assert rss_start is not None
            rss_end = rss_mb(gateway.pid)
            versions = latest_version(http)
            stop.set()
            for sender in senders:
                sender.join(timeout=30)
            assert worker.stdout is not None
            receipts = json.loads(worker.stdout.readline())
            worker.wait(timeout=120)

    rss_max = max([rss_end, *(rss for _, rss in samples)])
    print(
        f"after {args.warmup_s:.0f} s of warm-up and {args.duration_s:.0f} s "
        f"(load {load_average()}):"
    )
    print(
        f"  versions stored: {versions} after {operator.actions} operator actions; versions "
        f"delivered to subscribers: {len(receipts)}, "
        f"{sum(len(v) for v in receipts.values())} deliveries"
    )
    for method, values in operator.latencies_ms.items():
        if values:
            print(
                f"  {method} x{len(values)}: p50 {percentile(values, 50):.0f} ms, "
                f"p99 {percentile(values, 99):.0f} ms"
            )
    if telemetry_ms:
        print(
            f"  telemetry x{len(telemetry_ms)}: p50 {percentile(telemetry_ms, 50):.0f} ms, "
            f"p99 {percentile(telemetry_ms, 99):.0f} ms"
        )
    print(
        f"  gateway RSS MB: after the warm-up {rss_start:.1f} -> end {rss_end:.1f} "
        f"({(rss_end / rss_start - 1) * 100:+.1f} %), max {rss_max:.1f} "
        f"({(rss_max / rss_start - 1) * 100:+.1f} %); goal: end within 20 % of after the warm-up"
    )
    print(
        f"  (from when the load began, {rss_load:.1f} MB: end "
        f"{(rss_end / rss_load - 1) * 100:+.1f} %, max {(rss_max / rss_load - 1) * 100:+.1f} %)"
    )


if __name__ == "__main__":
    main()
