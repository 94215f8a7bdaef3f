"""The wire format (sse-starlette) and the client's reader (httpx-sse) agree."""

from __future__ import annotations

from gridlink.streams.sse import format_event
from tests.gridlink.streams.sse_parse import parse_sse


def _fields(raw: bytes) -> list[tuple[str, str, str, int | None]]:
    return [(e.event, e.data, e.id, e.retry) for e in parse_sse(raw)]


def test_round_trip() -> None:
    raw = (
        format_event('{"a":1}', event="allocation", event_id="7")
        + format_event("line one\nline two")
        + format_event('{"reason":"lifetime"}', event="reconnect", retry_ms=1500)
    )
    assert _fields(raw) == [
        ("allocation", '{"a":1}', "7", None),
        ("message", "line one\nline two", "7", None),  # the last event id carries over
        ("reconnect", '{"reason":"lifetime"}', "7", 1500),
    ]


def test_format_puts_fields_in_order() -> None:
    assert format_event("x", event="e", event_id="1", retry_ms=5) == (
        b"id: 1\nevent: e\ndata: x\nretry: 5\n\n"
    )


def test_crlf_parses_the_same() -> None:
    raw = format_event('{"a":1}', event="allocation", event_id="7") + format_event(
        "x", event="heartbeat"
    )
    assert _fields(raw.replace(b"\n", b"\r\n")) == _fields(raw)
