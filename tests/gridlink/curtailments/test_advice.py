"""Warnings for curtailments that will not act as written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridlink.curtailments.advice import IntervalView, curtailment_warnings, effective_limit_kw
from gridlink.models.event import SignalKind
from tests.gridlink.conftest import Api

T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)


def interval(kind: SignalKind, value: float, *, hours: float = 1.0) -> IntervalView:
    start = T0 + timedelta(hours=hours)
    return IntervalView(start, start + timedelta(hours=1), kind, value)


def test_effective_limit() -> None:
    assert effective_limit_kw(interval(SignalKind.LIMIT_KW, 40), 100) == 40
    assert effective_limit_kw(interval(SignalKind.REDUCTION_KW, 30), 100) == 70
    assert effective_limit_kw(interval(SignalKind.REDUCTION_PCT, 25), 100) == 75


def warn(iv: IntervalView, fleet_max_kw: float | None = 12.0) -> list[str]:
    return curtailment_warnings(
        [iv], now=T0, planning_horizon_h=24, baseline_kw=1000.0, fleet_max_kw=fleet_max_kw
    )


def test_a_binding_curtailment_has_no_warning() -> None:
    assert warn(interval(SignalKind.LIMIT_KW, 8)) == []


def test_a_limit_above_the_fleet_does_not_bind() -> None:
    (message,) = warn(interval(SignalKind.REDUCTION_PCT, 30))
    assert message.startswith("will not bind: its limit (700.0 kW, baseline 1000.0 kW)")
    assert "12.0 kW" in message


def test_beyond_the_horizon_says_when_it_is_planned() -> None:
    (message,) = warn(interval(SignalKind.LIMIT_KW, 8, hours=30))
    assert "beyond the 24 h planning horizon" in message
    assert "2026-07-01T18:00+00:00" in message


def test_without_nodes_and_in_the_past() -> None:
    assert "no node is registered" in warn(interval(SignalKind.LIMIT_KW, 8), None)[0]
    assert warn(interval(SignalKind.LIMIT_KW, 8000, hours=-5)) == []


def test_the_api_returns_the_warnings(api: Api) -> None:
    api.register_node("n1")  # at most 6 kW + 10 kW overhead
    start = api.clock.now + timedelta(hours=30)
    body = {"start": start.isoformat(), "duration_s": 3600, "reduction_pct": 30}
    created = api.request("POST", "/v1/curtailments", json=body)
    assert created.status_code == 201
    warnings = created.json()["warnings"]
    assert len(warnings) == 2
    assert "planning horizon" in warnings[0] and "will not bind" in warnings[1]
    binding = {"start": api.clock.now.isoformat(), "duration_s": 600, "limit_kw": 12}
    assert api.request("POST", "/v1/curtailments", json=binding).json()["warnings"] == []
