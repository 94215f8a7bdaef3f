"""A stand-in for vLLM's API server behind the proxy, served by a real uvicorn on a free port:
``/v1/completions`` streams ``n`` SSE chunks ``delay_s`` apart and records how many requests
were in flight at most and how many streams ended because the client went away."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

METRICS = '# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{engine="0"} 3.0\n'


@dataclass
class Upstream:
    in_flight: int = 0
    most_in_flight: int = 0
    disconnected: int = 0
    completed: int = 0

    def app(self) -> Starlette:
        async def completions(request: Request) -> Response:
            body: dict[str, Any] = await request.json()
            n, delay_s = int(body.get("n_chunks", 3)), float(body.get("delay_s", 0.0))
            if body.get("fail"):
                return JSONResponse({"error": {"message": "bad prompt"}}, status_code=400)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

            async def chunks() -> AsyncIterator[bytes]:
                finished = False
                try:
                    for i in range(n):
                        await asyncio.sleep(delay_s)
                        yield f"data: {json.dumps({'i': i})}\n\n".encode()
                    yield b"data: [DONE]\n\n"
                    finished = True
                finally:
                    self.in_flight -= 1
                    if finished:
                        self.completed += 1
                    else:
                        self.disconnected += 1

            return StreamingResponse(chunks(), media_type="text/event-stream")

        async def metrics(request: Request) -> Response:
            return PlainTextResponse(METRICS)

        async def models(request: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": "m"}]}, headers={"x-up": "1"})

        return Starlette(
            routes=[
                Route("/v1/completions", completions, methods=["POST"]),
                Route("/metrics", metrics),
                Route("/v1/models", models),
            ]
        )


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve the ASGI ``app`` on 127.0.0.1 (a port the OS picks) until the block ends; yields
    its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    give_up_at = time.monotonic() + 20
    while not (server.started and server.servers):
        if not runner.is_alive() or time.monotonic() > give_up_at:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        runner.join(timeout=10)


@contextmanager
def serve_closing_idle(
    close_after_s: float,
    *,
    answer: bool = True,
    body: bytes = b"{}",
    content_type: bytes = b"application/json",
) -> Iterator[str]:
    """A bare HTTP/1.1 upstream that answers every request ``200 {}`` and keeps the connection,
    but closes it without an answer when its next request comes more than ``close_after_s``
    after the last answer: a server whose keep-alive timer fires just as the request arrives
    (uvicorn's, which vLLM runs, closes idle connections after 5 s). ``answer=False``: it closes
    every connection without an answer (a server that breaks every request). ``body``: what it
    answers. Yields its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered_s: float | None = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                if not answer or (
                    answered_s is not None and time.monotonic() - answered_s > close_after_s
                ):
                    return
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\n")
                writer.write(b"content-length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
                answered_s = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    port = server.sockets[0].getsockname()[1]

    async def shut_down() -> None:
        server.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(shut_down(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(timeout=10)
        loop.close()
