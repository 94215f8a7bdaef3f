"""``GET /v1/nodes/{node_id}/allocation/stream``: a node's power allocation as server-sent events.

Events:
- ``allocation`` (``id`` = budget version id, data = the node trajectory JSON): on connect, the
  whole known trajectory, so a node keeps tracking its budget if the gateway disappears (unless
  ``Last-Event-ID`` says the client already has that version); then every new version.
- ``heartbeat`` every ``stream_heartbeat_s`` of silence, so both ends detect a dead connection.
- ``reconnect`` (with a ``retry:`` hint) after ``stream_lifetime_s``, at shutdown, or when the
  client reads too slowly to keep up; the server then closes the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import StreamingResponse

from gridlink.db.engine import session_scope
from gridlink.settings import GridlinkSettings
from gridlink.streams import repository
from gridlink.streams.broadcaster import Closed, Subscription
from gridlink.streams.feed import AllocationFeed
from gridlink.streams.snapshot import VersionSnapshot
from gridlink.streams.sse import format_event

router = APIRouter(tags=["streams"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get(
    "/v1/nodes/{node_id}/allocation/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 404: {"description": "No such node"}},
)
async def allocation_stream(
    node_id: int,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Stream this node's allocation trajectory: now, and at every new budget version."""
    feed: AllocationFeed = request.app.state.allocation_feed
    settings: GridlinkSettings = request.app.state.settings
    if not await asyncio.to_thread(_node_exists, request, node_id):
        raise HTTPException(status_code=404, detail=f"node {node_id} not found")
    subscription = feed.subscribe()  # before reading the latest: nothing slips in between
    try:
        latest = await feed.refresh()
    except BaseException:
        subscription.close()
        raise
    events = _events(node_id, subscription, latest, last_event_id, settings)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


def _node_exists(request: Request, node_id: int) -> bool:
    with session_scope(request.app.state.sessionmaker) as session:
        return repository.node_exists(session, node_id)


def _reconnect(reason: str, retry_ms: int) -> bytes:
    return format_event(json.dumps({"reason": reason}), event="reconnect", retry_ms=retry_ms)


async def _events(
    node_id: int,
    subscription: Subscription[VersionSnapshot],
    latest: VersionSnapshot | None,
    last_event_id: str | None,
    settings: GridlinkSettings,
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.stream_lifetime_s
    sent: int | None = None
    try:
        if latest is not None:
            if last_event_id is None or last_event_id.strip() != str(latest.version_id):
                yield latest.allocation_event(node_id)
            sent = latest.version_id
        while True:
            remaining_s = deadline - loop.time()
            if remaining_s <= 0:
                yield _reconnect("lifetime", settings.stream_retry_ms)
                return
            item = await subscription.get(min(settings.stream_heartbeat_s, remaining_s))
            if item is None:
                if loop.time() < deadline:
                    at = datetime.now(UTC).isoformat()
                    yield format_event(json.dumps({"at": at}), event="heartbeat")
                continue
            if isinstance(item, Closed):
                reason = subscription.drop_reason or "shutdown"
                yield _reconnect(reason, settings.stream_retry_ms)
                return
            if sent is None or item.version_id > sent:
                yield item.allocation_event(node_id)
                sent = item.version_id
    finally:
        subscription.close()
