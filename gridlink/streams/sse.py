"""Server-sent events wire format (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""

from __future__ import annotations


def format_event(
    data: str, *, event: str | None = None, event_id: str | None = None, retry_ms: int | None = None
) -> bytes:
    """One event. ``data`` may span lines: each becomes its own ``data:`` field."""
    lines: list[str] = []
    if retry_ms is not None:
        lines.append(f"retry: {int(retry_ms)}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()
