"""The gateway over HTTP: registration, the allocation stream (``httpx-sse``), telemetry.

pals_core never imports gridlink; this module is the whole contract:

- ``POST /v1/nodes`` registers or heartbeats the node (by name) and answers its id;
- ``GET /v1/nodes/{id}/allocation/stream`` (SSE): ``allocation`` events (id = budget version,
  data = the trajectory JSON), ``heartbeat`` events, ``reconnect`` events with a ``retry`` hint;
- ``POST /v1/nodes/{id}/telemetry`` takes a batch of samples (duplicates by ``sample_id`` are
  skipped by the gateway).

A 401 (unknown or revoked token) or 403 (a node token of another node) is final:
:class:`TokenRejectedError`; a 400/413/422 refuses that input (:class:`InputRefusedError`);
everything else is transient: :class:`GatewayUnavailableError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from pals_core.errors import PalsError


class GatewayError(PalsError):
    """A gateway exchange failed."""


class TokenRejectedError(GatewayError):
    """The gateway refused the token (401/403): retrying will not help."""


class GatewayUnavailableError(GatewayError):
    """The gateway could not be reached or answered an error: retry later."""


class InputRefusedError(GatewayError):
    """The gateway refused what was sent (400, 413, 422): sending it again will not help."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    event: str
    data: str
    event_id: str | None
    retry_ms: int | None


class GatewayClient:
    """One gateway, one token, shared HTTP clients (many nodes may share them):
    ``client`` for requests, ``stream_client`` (default: ``client``) for the allocation streams.

    A fleet gives the streams their own client: httpcore checks every connection of a pool on
    each request, so requests sharing a pool with hundreds of open streams cost hundreds of
    socket polls each."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        client: httpx.AsyncClient,
        gate: asyncio.Semaphore | None = None,
        stream_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = client
        self._stream_client = stream_client or client
        self._gate = gate or asyncio.Semaphore(4)
        """Requests in flight at once (shared by a fleet's nodes, so that a fleet does not flood
        the gateway's worker threads and database pool)."""

    async def _call(self, method: str, path: str, body: Any) -> Any:
        url = self.base_url + path
        try:
            async with self._gate:
                response = await self._client.request(method, url, json=body, headers=self._headers)
        except httpx.HTTPError as err:
            raise GatewayUnavailableError(f"{method} {url}: {err!r}") from err
        _check(response, f"{method} {url}")
        try:
            return response.json()
        except ValueError as err:
            raise GatewayUnavailableError(f"{method} {url} answered no JSON") from err

    async def register(self, registration: dict[str, Any]) -> int:
        """Register or heartbeat; the node's id."""
        answer = await self._call("POST", "/v1/nodes", registration)
        node_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(node_id, int):
            raise GatewayUnavailableError(f"POST /v1/nodes answered no node id: {answer!r}")
        return node_id

    async def post_telemetry(self, node_id: int, samples: list[dict[str, Any]]) -> None:
        await self._call("POST", f"/v1/nodes/{node_id}/telemetry", {"samples": samples})

    async def stream(
        self, node_id: int, last_event_id: str | None, read_timeout_s: float
    ) -> AsyncGenerator[StreamEvent]:
        """The node's allocation stream until the server ends it; raises on errors."""
        url = f"{self.base_url}/v1/nodes/{node_id}/allocation/stream"
        headers = dict(self._headers)
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(10.0, read=read_timeout_s)
        try:
            async with aconnect_sse(
                self._stream_client, "GET", url, headers=headers, timeout=timeout
            ) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                _check(source.response, f"GET {url}")
                async for sse in source.aiter_sse():
                    yield StreamEvent(sse.event, sse.data, sse.id or None, sse.retry)
        except (httpx.HTTPError, SSEError) as err:
            raise GatewayUnavailableError(f"GET {url}: {err!r}") from err


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code in (401, 403):
        raise TokenRejectedError(
            f"{what}: the gateway refused the token ({response.status_code}): {response.text[:300]}"
        )
    if response.status_code in (400, 413, 422):
        raise InputRefusedError(f"{what} refused ({response.status_code}): {response.text[:300]}")
    if response.status_code >= 400:
        raise GatewayUnavailableError(
            f"{what} answered {response.status_code}: {response.text[:300]}"
        )
