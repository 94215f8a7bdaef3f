"""A small client for the allocation stream: what a node agent runs to follow its budget.

``follow_allocation`` connects, reads server-sent events (``httpx-sse``), yields every new
trajectory, and
reconnects by itself: at once (after the server's ``retry:`` hint) on a ``reconnect`` event, with
exponential backoff on errors. It sends ``Last-Event-ID`` so an unchanged version is not resent.
An authentication or not-found answer is final and raised as :class:`AllocationStreamError`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from httpx_sse import EventSource, SSEError
from pydantic import ValidationError

from gridlink.budgets.schemas import NodeTrajectory
from gridlink.errors import GridlinkError

__all__ = ["AllocationStreamError", "AllocationUpdate", "follow_allocation"]


class AllocationStreamError(GridlinkError):
    """The gateway refused the stream (bad token, other node's token, unknown node)."""


@dataclass(frozen=True)
class AllocationUpdate:
    version_id: int
    trajectory: NodeTrajectory


async def follow_allocation(
    base_url: str,
    node_id: int,
    token: str | None,
    *,
    client: httpx.AsyncClient | None = None,
    initial_backoff_s: float = 0.25,
    max_backoff_s: float = 15.0,
    read_timeout_s: float = 60.0,
) -> AsyncIterator[AllocationUpdate]:
    """Yield this node's trajectory at connect and at every new version, forever."""
    own_client = client is None
    http = client or httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, read=read_timeout_s), trust_env=False
    )
    url = f"{base_url.rstrip('/')}/v1/nodes/{node_id}/allocation/stream"
    last_id: str | None = None
    backoff_s = initial_backoff_s
    try:
        while True:
            retry_s: float | None = None
            headers = {"Accept": "text/event-stream"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                async with http.stream("GET", url, headers=headers) as response:
                    if response.status_code in (401, 403, 404):
                        body = (await response.aread()).decode(errors="replace")
                        raise AllocationStreamError(
                            f"allocation stream refused ({response.status_code}): {body}"
                        )
                    response.raise_for_status()
                    backoff_s = initial_backoff_s
                    async for event in EventSource(response).aiter_sse():
                        if event.event == "allocation":
                            last_id = event.id or last_id
                            trajectory = NodeTrajectory.model_validate_json(event.data)
                            if trajectory.version_id is not None:
                                yield AllocationUpdate(trajectory.version_id, trajectory)
                        elif event.event == "reconnect":
                            retry_s = (event.retry or 0) / 1000
                            break
            except AllocationStreamError:
                raise
            except (httpx.HTTPError, SSEError, ValidationError):
                retry_s = None
            if retry_s is None:  # an error or a stream that ended without saying why
                retry_s = backoff_s * (1 + random.random() / 2)
                backoff_s = min(backoff_s * 2, max_backoff_s)
            await asyncio.sleep(retry_s)
    finally:
        if own_client:
            await http.aclose()
