"""``GET /v1/nodes/{node_id}/allocation/stream``: a node's power allocation as server-sent events.

Events:
- ``allocation`` (``id`` = budget version id, data = the node trajectory JSON): on connect, the
  whole known trajectory, so a node keeps tracking its budget if the gateway disappears (unless
  ``Last-Event-ID`` says the client already has that version); then every new version.
- ``heartbeat`` every ``stream_heartbeat_s``, so both ends detect a dead connection.
- ``reconnect`` (with a ``retry:`` hint) after ``stream_lifetime_s`` (checked at each heartbeat),
  at shutdown, when the client reads too slowly to keep up, or (reason ``revoked``) at the first
  heartbeat after its token was revoked; the server then closes.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette import EventSourceResponse

from gridlink.api.types import Id
from gridlink.auth import service as auth_service
from gridlink.auth.permissions import Permission, check, ensure_own_node
from gridlink.db.engine import session_scope
from gridlink.errors import AuthenticationError
from gridlink.nodes import service as nodes_service
from gridlink.settings import GridlinkSettings
from gridlink.streams import repository
from gridlink.streams.broadcaster import Closed, Subscription
from gridlink.streams.feed import AllocationFeed
from gridlink.streams.snapshot import Heartbeat, VersionSnapshot
from gridlink.streams.sse import SEPARATOR, format_event

router = APIRouter(tags=["streams"])

SSE_HEADERS = {"Cache-Control": "no-cache"}
SHUTDOWN_GRACE_S = 1.0


_bearer = HTTPBearer(auto_error=False, description="gridlink API token (`gridlink token create`)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@router.get(
    "/v1/nodes/{node_id}/allocation/stream",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        401: {"description": "No valid token"},
        403: {"description": "Another node's token"},
        404: {"description": "No such node"},
    },
)
async def allocation_stream(
    node_id: Id,
    request: Request,
    credentials: Credentials,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Stream this node's allocation trajectory: now, and at every new budget version.

    Same bearer tokens and rules as ``GET /v1/nodes/{id}/allocation``: readers of any node, or a
    node token for its own node.
    """
    feed: AllocationFeed = request.app.state.allocation_feed
    settings: GridlinkSettings = request.app.state.settings
    subscription = feed.subscribe()  # before reading the latest: nothing slips in between
    subscription.node_id = node_id
    try:
        subscription.token_id, latest_id = await asyncio.to_thread(
            _admit, request, node_id, credentials
        )
        latest = await feed.advance_to(latest_id) if latest_id is not None else feed.latest
    except BaseException:
        subscription.close()
        raise
    shutdown = anyio.Event()
    events = _events(node_id, subscription, latest, last_event_id, settings, shutdown)
    # Our own heartbeat events replace sse-starlette's pings. When the server shuts down,
    # sse-starlette sets ``shutdown`` and the stream says ``reconnect`` before it closes.
    return EventSourceResponse(
        events,
        headers=SSE_HEADERS,
        ping=0,
        sep=SEPARATOR,
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_S,
    )


def _admit(
    request: Request, node_id: int, credentials: HTTPAuthorizationCredentials | None
) -> tuple[int | None, int | None]:
    """Authenticate, authorize, check the node exists, read the latest version id: one session,
    one thread hop, released before the stream starts (a stream must not hold a connection).
    Returns the token's id (the feed ends the stream when it is revoked) and the latest version.

    The same checks as the REST dependency ``require(Permission.NODE_READ)`` plus
    ``ensure_own_node``; errors map to 401/403/404 in the API's one error handler.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("missing bearer token (Authorization: Bearer <token>)")
    with session_scope(request.app.state.sessionmaker) as session:
        principal = auth_service.authenticate(session, credentials.credentials.strip())
        if principal is None:
            raise AuthenticationError("invalid or revoked token")
        check(principal, Permission.NODE_READ)
        ensure_own_node(principal, node_id)
        nodes_service.get_node(session, node_id)
        return principal.token_id, repository.latest_version_id(session)


def _reconnect(reason: str, retry_ms: int) -> bytes:
    return format_event(json.dumps({"reason": reason}), event="reconnect", retry_ms=retry_ms)


async def _events(
    node_id: int,
    subscription: Subscription[VersionSnapshot | Heartbeat],
    latest: VersionSnapshot | None,
    last_event_id: str | None,
    settings: GridlinkSettings,
    shutdown: anyio.Event,
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()

    async def end_at_shutdown() -> None:
        await shutdown.wait()
        subscription.drop("shutdown")

    watcher = asyncio.create_task(end_at_shutdown())
    # Up to 10 % shorter, at random: streams opened together do not all reconnect together.
    deadline = loop.time() + settings.stream_lifetime_s * (1 - 0.1 * random.random())
    sent: int | None = None
    try:
        if latest is not None:
            if last_event_id is None or last_event_id.strip() != str(latest.version_id):
                yield latest.allocation_event(node_id)
            sent = latest.version_id
        while True:
            item = await subscription.get()
            if item is None:  # only a timed get returns None
                continue
            if isinstance(item, Closed):
                reason = subscription.drop_reason or "shutdown"
                yield _reconnect(reason, settings.stream_retry_ms)
                return
            if isinstance(item, Heartbeat):
                if loop.time() >= deadline:  # checked at each heartbeat tick
                    yield _reconnect("lifetime", settings.stream_retry_ms)
                    return
                yield item.event
            elif sent is None or item.version_id > sent:
                yield item.allocation_event(node_id)
                sent = item.version_id
    finally:
        watcher.cancel()
        subscription.close()
