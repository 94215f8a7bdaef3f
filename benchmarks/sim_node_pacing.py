"""How faithfully `pals sim-node` paces streamed tokens to the simulator's timing over HTTP.

Starts `pals sim-node` in its own process on a free loopback port (so the client does not
share its interpreter), sends CONCURRENCY streaming completions at once, and compares the
inter-token gaps the clients saw with the ITL the simulator reports on /metrics. Prints the
tokens received, the client's mean and p99 token gap, the simulated mean and p99 ITL, their
ratio, and the pacing lag the server accumulated.

    .venv/bin/python benchmarks/sim_node_pacing.py [--concurrency 32] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import statistics
import subprocess
import sys
import time

import httpx

from pals_core.engine.prometheus import parse_metrics


def _serve(model: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "pals_core", "sim-node", "--model", model, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base_url + "/health").status_code == 200:
                return server, base_url
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("sim-node failed to start")
        time.sleep(0.1)


async def _stream(client: httpx.AsyncClient, max_tokens: int) -> list[float]:
    body = {"prompt": "x" * 800, "max_tokens": max_tokens, "stream": True}
    times: list[float] = []
    async with client.stream("POST", "/v1/completions", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                times.append(time.monotonic())
    return times


async def _run(base_url: str, concurrency: int, max_tokens: int) -> list[list[float]]:
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        return await asyncio.gather(*(_stream(client, max_tokens) for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    server, base_url = _serve(args.model)
    try:
        before = parse_metrics(httpx.get(base_url + "/metrics").text)
        started = time.monotonic()
        streams = asyncio.run(_run(base_url, args.concurrency, args.max_tokens))
        wall_s = time.monotonic() - started
        text = httpx.get(base_url + "/metrics").text
    finally:
        server.terminate()
        server.wait(timeout=10)
    after = parse_metrics(text)
    lag_s = next(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("pals_sim:pacing")
    )
    itl = after.inter_token_latency_seconds.minus(before.inter_token_latency_seconds)
    gaps = [b - a for times in streams for a, b in itertools.pairwise(times)]
    gaps.sort()
    tokens = sum(len(t) for t in streams)
    print(f"model {args.model}, {args.concurrency} concurrent streams x {args.max_tokens} tokens")
    print(f"tokens received            {tokens} in {wall_s:.2f} s ({tokens / wall_s:.0f} tok/s)")
    print(f"client mean token gap      {statistics.fmean(gaps) * 1000:.2f} ms")
    print(f"simulated mean ITL         {itl.mean_s * 1000:.2f} ms")
    print(f"ratio client / simulated   {statistics.fmean(gaps) / itl.mean_s:.3f}")
    print(f"client p99 token gap       {gaps[int(0.99 * (len(gaps) - 1))] * 1000:.2f} ms")
    print(f"simulated p99 ITL (bucket) {itl.quantile(0.99) * 1000:.2f} ms")
    print(f"server pacing lag          {lag_s * 1000:.1f} ms")


if __name__ == "__main__":
    main()
