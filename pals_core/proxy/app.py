"""``pals proxy``: an OpenAI-compatible reverse proxy that admits at most N requests at once.

The batch knob for a vLLM that runs without the PALS scheduler plugin: the proxy sits in front of
vLLM's API server, forwards every request unchanged and holds generation requests (every
``POST``) in a first-come-first-served queue while N are in flight. Responses stream through
chunk by chunk; a client that disconnects (while queued or while streaming) has its upstream
request closed, which vLLM treats as an abort. ``GET /metrics`` is vLLM's own, with the proxy's
gauges appended; ``/pals/batch_limit`` speaks the protocol of the plugin and ``pals sim-node``::

    GET  /pals/batch_limit   -> {"max_num_seqs": N, "active": a, "waiting": w, "limit_set_at_s": t}
    POST /pals/batch_limit   <- {"max_num_seqs": N}
    GET  /pals/batch_limit/history -> {"clock": "monotonic", "entries": [[t_s, active, waiting,
                                       limit], ...]}   (pals_core.vllm_plugin.history)

This is a pure ASGI app (no framework on the request path, to keep its overhead small); the
HTTP client to vLLM is made at start-up (ASGI lifespan) and closed at shutdown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import httpx

from pals_core.engine.vllm import NO_ANSWER_ERRORS
from pals_core.errors import ConfigurationError
from pals_core.proxy.limiter import AdmissionLimiter, check_limit
from pals_core.vllm_plugin.history import HISTORY_PATH

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BATCH_LIMIT_PATH = "/pals/batch_limit"
UPSTREAM_KEEPALIVE_S = 2.0
"""How long an idle connection to vLLM is kept for reuse. Below vLLM's own keep-alive (its
uvicorn closes idle connections after 5 s, ``VLLM_HTTP_TIMEOUT_KEEP_ALIVE``): at equal times a
request can be sent on a connection vLLM is just closing."""
# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the HTTP client sets itself.
_REQUEST_DROP = {
    b"host",
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"content-length",
}
_RESPONSE_DROP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


def _json_response(status: int, body: object) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    return status, headers, payload


def _error(status: int, message: str, kind: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An error body in the OpenAI API's shape, so clients report it as they would vLLM's."""
    return _json_response(status, {"error": {"message": message, "type": kind, "code": status}})


async def _send_whole(send: Send, response: tuple[int, list[tuple[bytes, bytes]], bytes]) -> None:
    status, headers, body = response
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None if the client went away first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class ProxyApp:
    """The proxy as an ASGI app. ``transport`` replaces the network (tests, benchmarks)."""

    def __init__(
        self,
        upstream_url: str,
        max_num_seqs: int,
        *,
        connect_timeout_s: float = 5.0,
        upstream_keepalive_s: float = UPSTREAM_KEEPALIVE_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not upstream_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"upstream URL must start with http:// or https://, got {upstream_url!r}"
            )
        self.upstream_url = upstream_url.rstrip("/")
        self.limiter = AdmissionLimiter(max_num_seqs)
        self._limit_set_at_s: float | None = None
        if not upstream_keepalive_s > 0:
            raise ConfigurationError(
                f"upstream keep-alive must be > 0 s, got {upstream_keepalive_s!r}"
            )
        self._connect_timeout_s = connect_timeout_s
        self._upstream_keepalive_s = upstream_keepalive_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.upstream_retries = 0
        """Requests sent again because they got no answer
        (:data:`~pals_core.engine.vllm.NO_ANSWER_ERRORS`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    def _bad_gateway(self, err: Exception) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return _error(502, f"upstream {self.upstream_url}: {err!r}", "BadGateway")

    async def _send_upstream(self, request: httpx.Request) -> httpx.Response:
        """``request`` sent upstream (streamed), once more on a new connection if it got no
        answer (:data:`~pals_core.engine.vllm.NO_ANSWER_ERRORS`; vLLM aborts a request
        whose connection drops, so the client never gets a generation twice)."""
        try:
            return await self.client.send(request, stream=True)
        except NO_ANSWER_ERRORS:
            self.upstream_retries += 1
            return await self.client.send(request, stream=True)

    # -- lifespan ---------------------------------------------------------------------------------

    def _make_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.upstream_url,
            transport=self._transport,
            # Generations last as long as they last: only connecting is bounded.
            timeout=httpx.Timeout(None, connect=self._connect_timeout_s),
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=64,
                keepalive_expiry=self._upstream_keepalive_s,
            ),
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = self._make_client()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                    self._client = None
                await send({"type": "lifespan.shutdown.complete"})
                return

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:  # served without lifespan events
            self._client = self._make_client()
        return self._client

    # -- routing ----------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == BATCH_LIMIT_PATH:
            await _send_whole(send, await self._batch_limit(method, receive))
        elif path == HISTORY_PATH and method == "GET":
            await _send_whole(send, _json_response(200, self.limiter.history.as_json()))
        elif path == "/metrics" and method == "GET":
            await self._metrics(scope, send)
        else:
            await self._forward(scope, receive, send, limited=method == "POST")

    async def _batch_limit(
        self, method: str, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if method == "POST":
            try:
                body = json.loads(await _read_body(receive) or b"null")
                self.limiter.set_limit(check_limit(body["max_num_seqs"]))
                self._limit_set_at_s = time.monotonic()
            except (ValueError, TypeError, KeyError) as err:
                detail = str(err) if isinstance(err, ConfigurationError) else repr(err)
                return _json_response(
                    400, {"detail": f'expected {{"max_num_seqs": N}} with N >= 1: {detail}'}
                )
        elif method != "GET":
            return _json_response(405, {"detail": "use GET or POST"})
        limiter = self.limiter
        return _json_response(
            200,
            {
                "max_num_seqs": limiter.limit,
                "active": limiter.active,
                "waiting": limiter.waiting,
                "limit_set_at_s": self._limit_set_at_s,
            },
        )

    def _own_metrics(self) -> bytes:
        lines = []
        for name, doc, value in (
            (
                "pals:batch_limit",
                "PALS: max_num_seqs in force (the proxy's limit).",
                self.limiter.limit,
            ),
            (
                "pals:proxy_active_requests",
                "PALS proxy: requests admitted upstream.",
                self.limiter.active,
            ),
            (
                "pals:proxy_waiting_requests",
                "PALS proxy: requests queued in the proxy.",
                self.limiter.waiting,
            ),
        ):
            lines += [f"# HELP {name} {doc}", f"# TYPE {name} gauge", f"{name} {value}"]
        name = "pals:proxy_upstream_retries_total"
        lines += [
            f"# HELP {name} PALS proxy: requests sent again because vLLM did not answer them "
            "(connection not made, or broken before a response).",
            f"# TYPE {name} counter",
            f"{name} {self.upstream_retries}",
        ]
        return ("\n".join(lines) + "\n").encode()

    async def _metrics(self, scope: Scope, send: Send) -> None:
        try:
            upstream = await self._send_upstream(self.client.build_request("GET", "/metrics"))
            await upstream.aread()
        except httpx.HTTPError as err:
            await _send_whole(send, self._bad_gateway(err))
            return
        body = upstream.content
        if upstream.status_code == 200:
            body = body if body.endswith(b"\n") or not body else body + b"\n"
            body += self._own_metrics()
        content_type = upstream.headers.get("content-type", "text/plain; version=0.0.4")
        headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
        await _send_whole(send, (upstream.status_code, headers, body))

    # -- forwarding -------------------------------------------------------------------------------

    async def _forward(self, scope: Scope, receive: Receive, send: Send, *, limited: bool) -> None:
        body = await _read_body(receive)
        if body is None:
            return
        async with anyio.create_task_group() as tasks:

            async def cancel_on_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tasks.cancel_scope.cancel()

            tasks.start_soon(cancel_on_disconnect)
            if limited:
                await self.limiter.acquire()
            try:
                await self._relay(scope, body, send)
            finally:
                if limited:
                    self.limiter.release()
                tasks.cancel_scope.cancel()

    async def _relay(self, scope: Scope, body: bytes, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _REQUEST_DROP]
        query = scope.get("query_string", b"")
        url = scope["path"] + ("?" + query.decode("latin-1") if query else "")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            upstream = await self._send_upstream(request)
        except httpx.HTTPError as err:
            await _send_whole(send, self._bad_gateway(err))
            return
        try:
            response_headers = [
                (k, v) for k, v in upstream.headers.raw if k.decode().lower() not in _RESPONSE_DROP
            ]
            await send(
                {
                    "type": "http.response.start",
                    "status": upstream.status_code,
                    "headers": response_headers,
                }
            )
            async for chunk in upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # Closing an unfinished response drops its connection: vLLM aborts the request.
            with anyio.CancelScope(shield=True):
                await upstream.aclose()
