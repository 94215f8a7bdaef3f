"""The mapping table of docs/openadr.md, row by row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridlink.models.event import SignalKind
from gridlink.openadr.mapping import EventRejected, MappedEvent, MappingContext, map_event

T = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
CTX = MappingContext(
    received_at=T,
    horizon_end=T + timedelta(hours=24),
    targets=frozenset({"gridlink", "facility"}),
    simple_reductions_pct=(0.0, 10.0, 25.0, 50.0),
    ven_name="gridlink",
    max_piece_s=7 * 86400.0,
)


def event(payloads: list[dict[str, Any]], units: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "ev-1",
        "createdDateTime": "2026-07-01T00:00:00Z",
        "modificationDateTime": "2026-07-01T00:00:00Z",
        "objectType": "EVENT",
        "programID": "prog-1",
        "intervalPeriod": {"start": "2026-07-01T12:00:00Z", "duration": "PT1H"},
        "intervals": [{"id": 0, "payloads": payloads}],
        **extra,
    }
    if units is not None:
        body["payloadDescriptors"] = [
            {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": p["type"], "units": units}
            for p in payloads
        ]
    return body


def signals(mapped: MappedEvent) -> list[tuple[SignalKind, float]]:
    return [(i.kind, i.value) for i in mapped.intervals]


@pytest.mark.parametrize(
    ("payload_type", "value", "units", "expected"),
    [
        ("IMPORT_CAPACITY_LIMIT", 500, "KW", (SignalKind.LIMIT_KW, 500.0)),
        ("IMPORT_CAPACITY_LIMIT", 250_000, "W", (SignalKind.LIMIT_KW, 250.0)),
        ("IMPORT_CAPACITY_LIMIT", 0.5, "MW", (SignalKind.LIMIT_KW, 500.0)),
        ("IMPORT_CAPACITY_LIMIT", 300, None, (SignalKind.LIMIT_KW, 300.0)),
        ("DISPATCH_SETPOINT", 420, "KW", (SignalKind.LIMIT_KW, 420.0)),
        ("DISPATCH_SETPOINT_RELATIVE", 40, "KW", (SignalKind.REDUCTION_KW, 40.0)),
        ("DISPATCH_SETPOINT_RELATIVE", 0.2, "PERCENT", (SignalKind.REDUCTION_PCT, 20.0)),
    ],
)
def test_limits_and_dispatch(
    payload_type: str, value: float, units: str | None, expected: Any
) -> None:
    mapped = map_event(event([{"type": payload_type, "values": [value]}], units), CTX)
    assert signals(mapped) == [expected]


@pytest.mark.parametrize(("level", "pct"), [(1, 10.0), (2, 25.0), (3, 50.0)])
def test_simple_levels_are_configured_reductions(level: int, pct: float) -> None:
    mapped = map_event(event([{"type": "SIMPLE", "values": [level]}]), CTX)
    assert signals(mapped) == [(SignalKind.REDUCTION_PCT, pct)]


def test_simple_level_0_and_a_zero_relative_dispatch_ask_nothing() -> None:
    assert signals(map_event(event([{"type": "SIMPLE", "values": [0]}]), CTX)) == []
    zero = event([{"type": "DISPATCH_SETPOINT_RELATIVE", "values": [0]}], "KW")
    assert signals(map_event(zero, CTX)) == []


def test_grid_emergency_is_the_deepest_configured_reduction() -> None:
    mapped = map_event(event([{"type": "ALERT_GRID_EMERGENCY", "values": ["storm"]}]), CTX)
    assert signals(mapped) == [(SignalKind.REDUCTION_PCT, 50.0)]


def test_price_goes_to_the_price_policy_with_its_currency_and_unit() -> None:
    body = event([{"type": "PRICE", "values": [0.42]}])
    body["payloadDescriptors"] = [
        {
            "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
            "payloadType": "PRICE",
            "units": "KWH",
            "currency": "USD",
        }
    ]
    mapped = map_event(body, CTX)
    assert mapped.intervals == ()
    (price,) = mapped.prices
    assert (price.start, price.duration_s, price.price, price.currency, price.unit) == (
        T,
        3600.0,
        0.42,
        "USD",
        "KWH",
    )


def test_unknown_payloads_are_listed_and_ignored() -> None:
    payloads: list[dict[str, Any]] = [{"type": "GHG", "values": [300]}]
    payloads.append({"type": "X_VENDOR", "values": ["a"]})
    payloads.append({"type": "IMPORT_CAPACITY_LIMIT", "values": [80]})
    mapped = map_event(event(payloads), CTX)
    assert mapped.ignored_payload_types == ("GHG", "X_VENDOR")
    assert signals(mapped) == [(SignalKind.LIMIT_KW, 80.0)]


@pytest.mark.parametrize(
    ("targets", "targeted"),
    [(None, True), ([], True), (["gridlink"], True), (["facility", "x"], True), (["ven-b"], False)],
)
def test_targets(targets: list[str] | None, targeted: bool) -> None:
    body = event([{"type": "SIMPLE", "values": [1]}], targets=targets)
    assert map_event(body, CTX).targeted is targeted


def test_openadr_priority_lower_number_is_higher_planner_priority() -> None:
    simple = [{"type": "SIMPLE", "values": [1]}]
    urgent = map_event(event(simple, priority=0), CTX).priority
    routine = map_event(event(simple, priority=5), CTX).priority
    none = map_event(event(simple, priority=None), CTX).priority
    assert urgent > routine > none == 0


def test_explicit_nulls_and_a_date_only_now_are_accepted() -> None:
    body = event([{"type": "SIMPLE", "values": [2]}], targets=None, eventName=None, duration=None)
    body["intervalPeriod"] = {"start": "0001-01-01", "duration": "PT30M", "randomizeStart": None}
    mapped = map_event(body, CTX)
    assert mapped.intervals[0].start == T
    assert mapped.intervals[0].duration_s == 1800.0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (event([{"type": "SIMPLE", "values": [4]}]), "SIMPLE"),
        (event([{"type": "IMPORT_CAPACITY_LIMIT", "values": [-1]}], "KW"), "IMPORT_CAPACITY_LIMIT"),
        (event([{"type": "IMPORT_CAPACITY_LIMIT", "values": [5]}], "KWH"), "units"),
        (event([{"type": "IMPORT_CAPACITY_LIMIT", "values": [0]}], "KW"), "above 0"),
        ({**event([{"type": "SIMPLE", "values": [1]}]), "intervalPeriod": None}, "no start"),
        ({"id": "ev-1", "objectType": "EVENT"}, "programID"),
    ],
)
def test_invalid_events_are_rejected_with_a_reason(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(EventRejected) as info:
        map_event(body, CTX)
    assert reason in info.value.reason
    assert info.value.vtn_event_id == "ev-1"
