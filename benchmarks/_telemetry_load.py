"""Telemetry load for the fan-out benchmark: node telemetry posted at a steady rate from a few
sender threads while the budget versions fan out."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx


def telemetry_load(
    base_url: str,
    tokens: dict[int, str],
    samples_per_s: float,
    batch: int,
    stop: threading.Event,
    latencies_ms: list[float],
    threads: int = 4,
) -> list[threading.Thread]:
    """``samples_per_s`` telemetry samples per second in batches of ``batch``, spread over the
    nodes and ``threads`` senders; each request's latency goes to ``latencies_ms``."""
    interval_s = threads * batch / samples_per_s
    nodes = list(tokens)

    def send(k: int) -> None:
        with httpx.Client(base_url=base_url, timeout=30, trust_env=False) as http:
            i = k
            next_at = time.monotonic()
            while not stop.is_set():
                node_id = nodes[i % len(nodes)]
                now = datetime.now(UTC)
                body = {
                    "samples": [
                        {
                            "ts": (now - timedelta(milliseconds=batch - j)).isoformat(),
                            "power_w": 450.0 + j % 50,
                            "throughput_tok_s": 1000.0,
                        }
                        for j in range(batch)
                    ]
                }
                t0 = time.perf_counter()
                response = http.post(
                    f"/v1/nodes/{node_id}/telemetry",
                    json=body,
                    headers={"Authorization": f"Bearer {tokens[node_id]}"},
                )
                latencies_ms.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 201:
                    raise RuntimeError(f"telemetry: {response.status_code} {response.text[:200]}")
                i += threads
                next_at += interval_s
                stop.wait(max(0.0, next_at - time.monotonic()))

    senders = [threading.Thread(target=send, args=(k,), daemon=True) for k in range(threads)]
    for sender in senders:
        sender.start()
    return senders
