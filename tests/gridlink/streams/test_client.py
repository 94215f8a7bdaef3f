"""The SSE wire format and the client's parser agree, including multi-line data and comments."""

from __future__ import annotations

from gridlink.streams.client import SSEEvent, SSEParser
from gridlink.streams.sse import format_event


def _parse(raw: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    events = []
    for line in raw.decode().split("\n"):
        event = parser.feed_line(line)
        if event is not None:
            events.append(event)
    return events


def test_round_trip() -> None:
    raw = (
        format_event('{"a":1}', event="allocation", event_id="7")
        + b": a comment line\n\n"
        + format_event("line one\nline two")
        + format_event('{"reason":"lifetime"}', event="reconnect", retry_ms=1500)
    )
    assert _parse(raw) == [
        SSEEvent("allocation", '{"a":1}', "7", None),
        SSEEvent("message", "line one\nline two", None, None),
        SSEEvent("reconnect", '{"reason":"lifetime"}', None, 1500),
    ]


def test_format_puts_fields_in_order() -> None:
    assert format_event("x", event="e", event_id="1", retry_ms=5) == (
        b"retry: 5\nid: 1\nevent: e\ndata: x\n\n"
    )


def test_bytes_split_anywhere_and_crlf_parse_the_same() -> None:
    raw = (
        format_event('{"a":1}', event="allocation", event_id="7")
        + b": comment\r\n\r\n"
        + format_event("x", event="heartbeat").replace(b"\n", b"\r\n")
    )
    expected = [SSEEvent("allocation", '{"a":1}', "7", None), SSEEvent("heartbeat", "x")]
    for size in (1, 2, 3, 7, len(raw)):
        parser = SSEParser()
        events = []
        for start in range(0, len(raw), size):
            events.extend(parser.feed_bytes(raw[start : start + size]))
        assert events == expected, size
