"""Server-sent events on the wire, through ``sse-starlette``: one encoder for every event the
streams send (``\\n`` line ends; fields ``id``, ``event``, ``data``, ``retry`` in that order)."""

from __future__ import annotations

from sse_starlette import ServerSentEvent

SEPARATOR = "\n"


def format_event(
    data: str, *, event: str | None = None, event_id: str | None = None, retry_ms: int | None = None
) -> bytes:
    """One event. ``data`` may span lines: each becomes its own ``data:`` field."""
    encoded: bytes = ServerSentEvent(
        data=data, event=event, id=event_id, retry=retry_ms, sep=SEPARATOR
    ).encode()
    return encoded
