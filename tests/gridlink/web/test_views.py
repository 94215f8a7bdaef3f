"""Pure view logic of the facility page: node modes, event grouping, step series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridlink.curtailments.schemas import CurtailmentOut
from gridlink.models.event import EventSource, EventStatus
from gridlink.web.views import group_events, node_mode, signal_text, tokens_per_joule

T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("power_w", "alloc_w", "qos", "waiting", "expected"),
    [
        (None, 1000.0, False, None, "unknown"),
        (900.0, 1000.0, False, 0, "tracking"),
        (990.0, 1000.0, True, 0, "qos_risk"),
        (990.0, 1000.0, False, 5, "qos_risk"),
        (500.0, 1000.0, True, 0, "tracking"),  # a violation far under the budget: not the budget
        (1200.0, 1000.0, False, 0, "infeasible"),  # cannot get down to its allocation
        (300.0, 300.0, False, 0, "infeasible"),  # allocation under its minimum (400 W)
        (900.0, None, True, 0, "qos_risk"),
    ],
)
def test_node_mode(
    power_w: float | None, alloc_w: float | None, qos: bool, waiting: int | None, expected: str
) -> None:
    got = node_mode(
        power_w=power_w,
        alloc_w=alloc_w,
        min_power_w=400.0,
        qos_violation=qos,
        requests_waiting=waiting,
    )
    assert got == expected


def test_tokens_per_joule() -> None:
    assert tokens_per_joule(500.0, 1000.0) == 2.0
    assert tokens_per_joule(0.0, 1000.0) is None
    assert tokens_per_joule(None, 1.0) is None


def event(
    id_: int, status: EventStatus, *, version: int = 1, current: bool = True, hours: float = 1
) -> CurtailmentOut:
    start = T0 + timedelta(hours=hours)
    return CurtailmentOut(
        id=id_,
        source=EventSource.MANUAL,
        external_id=f"ext-{id_ if version == 1 and current else 'chain'}",
        version=version,
        is_current=current,
        superseded_by_id=None,
        name=None,
        status=status,
        priority=0,
        start=start,
        end=start + timedelta(hours=1),
        duration_s=3600,
        limit_kw=None,
        reduction_kw=None,
        reduction_pct=20.0,
        recurrence=None,
        intervals=[],
        created_by=None,
        created_at=T0,
        cancelled_at=None,
    )


def test_group_events_by_status_with_versions() -> None:
    old = event(1, EventStatus.SCHEDULED, version=1, current=False, hours=5)
    new = event(2, EventStatus.SCHEDULED, version=2, hours=5)
    soon = event(3, EventStatus.SCHEDULED, hours=2)
    active = event(4, EventStatus.ACTIVE, hours=-0.5)
    done = event(5, EventStatus.COMPLETED, hours=-5)
    cancelled = event(6, EventStatus.CANCELLED, hours=-1)
    groups = group_events([old, new, soon, active, done, cancelled])
    assert [e.id for e in groups.upcoming] == [3, 2]
    assert [e.id for e in groups.active] == [4]
    assert [e.id for e in groups.past] == [6, 5]
    assert [v.id for v in groups.older_versions(new)] == [1]
    assert groups.older_versions(soon) == []
    assert groups.sources == ["manual"]
    assert signal_text(new) == "-20 %"
