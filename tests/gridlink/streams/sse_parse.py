"""Parse server-sent events the way clients do (``httpx-sse``), for assertions on raw bytes."""

from __future__ import annotations

import httpx
from httpx_sse import EventSource, ServerSentEvent


def parse_sse(raw: bytes) -> list[ServerSentEvent]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    return list(EventSource(response).iter_sse())
