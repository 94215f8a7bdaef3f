"""What ``pals proxy`` adds per request and per streamed token.

An upstream that answers at once (a raw ASGI app imitating vLLM's completions: a small JSON body,
or ``--tokens`` SSE chunks shaped like vLLM's) runs in one process, the proxy in another, the
client in this one; each figure compares the same requests sent direct and through the proxy.

    .venv/bin/python benchmarks/proxy_overhead.py [--requests 300] [--tokens 2000] [--streams 10]

On a shared 2-core machine, run it when the machine is quiet, and read the figures as upper
bounds (the three processes compete for the cores).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

CHUNK = (
    b'data: {"id":"cmpl-0","object":"text_completion","created":0,"model":"m","choices":'
    b'[{"index":0,"text":" token","logprobs":null,"finish_reason":null}]}\n\n'
)
SMALL = json.dumps(
    {
        "id": "cmpl-0",
        "object": "text_completion",
        "model": "m",
        "choices": [{"index": 0, "text": "hello", "finish_reason": "length"}],
    }
).encode()


async def upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """vLLM's completions endpoint without the model: ``?tokens=N`` streams N chunks."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    tokens = int(dict(httpx.QueryParams(scope["query_string"].decode())).get("tokens", 0))
    if tokens == 0:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": SMALL})
        return
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for _ in range(tokens):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(argv: list[str], ready_url: str) -> Iterator[None]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(ready_url, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{argv} did not start") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def request_latencies_s(client: httpx.Client, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.post(url, content=b'{"prompt": "hi", "max_tokens": 1}')
        response.raise_for_status()
        out.append(time.perf_counter() - start)
    return out


def stream_durations_s(client: httpx.Client, url: str, tokens: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        with client.stream("POST", f"{url}?tokens={tokens}", content=b"{}") as response:
            received = sum(1 for line in response.iter_lines() if line.startswith("data: "))
        assert received == tokens + 1, received
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=10)
    args = parser.parse_args()
    up_port, proxy_port = free_port(), free_port()
    up = f"http://127.0.0.1:{up_port}"
    proxy = f"http://127.0.0.1:{proxy_port}"
    here = os.path.dirname(os.path.abspath(__file__))
    serve_up = [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {here!r}); import uvicorn, proxy_overhead; "
        f"uvicorn.run(proxy_overhead.upstream, port={up_port}, log_level='warning', "
        "lifespan='off')",
    ]
    serve_proxy = [
        sys.executable,
        "-m",
        "pals_core",
        "proxy",
        "--upstream",
        up,
        "--max-num-seqs",
        "64",
        "--port",
        str(proxy_port),
    ]
    path = "/v1/completions"
    with (
        process(serve_up, up + "/"),
        process(serve_proxy, proxy + "/pals/batch_limit"),
        httpx.Client(timeout=60) as client,
    ):
        for base in (up, proxy):  # warm up connections and code paths
            request_latencies_s(client, base + path, 20)
            stream_durations_s(client, base + path, 100, 2)
        direct = request_latencies_s(client, up + path, args.requests)
        proxied = request_latencies_s(client, proxy + path, args.requests)
        direct_stream = stream_durations_s(client, up + path, args.tokens, args.streams)
        proxied_stream = stream_durations_s(client, proxy + path, args.tokens, args.streams)
    med_direct_ms = statistics.median(direct) * 1e3
    med_proxied_ms = statistics.median(proxied) * 1e3
    per_token_direct_us = statistics.median(direct_stream) / args.tokens * 1e6
    per_token_proxied_us = statistics.median(proxied_stream) / args.tokens * 1e6
    print(
        f"non-streamed request, median of {args.requests}: direct {med_direct_ms:.2f} ms, "
        f"proxied {med_proxied_ms:.2f} ms -> the proxy adds {med_proxied_ms - med_direct_ms:.2f}"
        " ms per request"
    )
    q = statistics.quantiles
    print(
        f"  p99: direct {q(direct, n=100)[98] * 1e3:.2f} ms, proxied "
        f"{q(proxied, n=100)[98] * 1e3:.2f} ms"
    )
    added_us = per_token_proxied_us - per_token_direct_us
    print(
        f"streamed tokens ({args.tokens} per stream, median of {args.streams} streams): direct "
        f"{per_token_direct_us:.1f} us/token, proxied {per_token_proxied_us:.1f} us/token -> "
        f"the proxy adds {added_us:.1f} us per token"
    )


if __name__ == "__main__":
    main()
