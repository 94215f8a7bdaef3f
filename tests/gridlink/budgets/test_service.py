"""recompute_budget, upcoming_boundaries and node_trajectory on a session with explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridlink.auth.principal import SYSTEM
from gridlink.budgets.service import (
    node_trajectory,
    recompute_budget,
    timeline,
    upcoming_boundaries,
)
from gridlink.curtailments import service as curtailments
from gridlink.curtailments.schemas import CurtailmentCreate
from gridlink.errors import NotFoundError
from gridlink.models.budget import BudgetVersion
from gridlink.models.node import Node
from gridlink.models.telemetry import TelemetrySample
from gridlink.settings import GridlinkSettings

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> GridlinkSettings:
    return GridlinkSettings(
        database_url=database_url,
        facility_max_kw=100.0,
        facility_overhead_kw=10.0,
        node_offline_after_s=3600.0,
    )


def measured_settings(database_url: str) -> GridlinkSettings:
    """The baseline measured over the last 15 minutes of telemetry."""
    return GridlinkSettings(
        database_url=database_url,
        facility_max_kw=100.0,
        facility_overhead_kw=10.0,
        baseline_mode="measured",
        baseline_window_min=15,
    )


def add_node(session: Session, name: str, tier: int = 1) -> Node:
    node = Node(
        name=name,
        gpu_type="H100",
        gpu_count=4,
        min_power_w=2000.0,
        max_power_w=6000.0,
        flexibility_tier=tier,
        curve=[],
        last_seen_at=NOW,
    )
    session.add(node)
    session.flush()
    return node


def curtail(session: Session, settings: GridlinkSettings, **fields: object) -> int:
    data = CurtailmentCreate.model_validate({"duration_s": 3600, **fields})
    result = curtailments.create_curtailment(
        session, data, actor=SYSTEM, now=NOW, settings=settings
    )
    return result.event.id


def versions(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(BudgetVersion)) or 0)


def test_same_inputs_store_no_duplicate_version(
    db_session: Session, settings: GridlinkSettings
) -> None:
    a = add_node(db_session, "a")
    curtail(db_session, settings, start=NOW + timedelta(hours=1), limit_kw=20)
    first = recompute_budget(db_session, now=NOW, reason="test", settings=settings)
    assert first is not None and first.reason == "test"
    assert first.inputs["events"][0]["version"] == 1 and first.inputs["nodes"][0]["id"] == a.id
    assert recompute_budget(db_session, now=NOW, reason="again", settings=settings) is None
    later = NOW + timedelta(minutes=10)
    assert recompute_budget(db_session, now=later, reason="tick", settings=settings) is None
    assert versions(db_session) == 1

    curtail(db_session, settings, start=NOW + timedelta(hours=3), limit_kw=15)
    second = recompute_budget(db_session, now=later, reason="new event", settings=settings)
    assert second is not None and second.id > first.id
    trajectory = node_trajectory(db_session, a.id, now=later)
    assert trajectory.version_id == second.id
    assert trajectory.power_at(NOW + timedelta(hours=1, minutes=30)) == 6000.0  # 10 kW budget
    assert trajectory.power_at(NOW + timedelta(hours=3, minutes=30)) == 5000.0
    assert trajectory.segments[0].end > later  # only segments from now on


def test_under_using_node_gives_its_share_away(
    db_session: Session, settings: GridlinkSettings
) -> None:
    a, b, c = add_node(db_session, "a"), add_node(db_session, "b"), add_node(db_session, "c")
    curtail(db_session, settings, start=NOW - timedelta(minutes=30), limit_kw=25)
    version = recompute_budget(db_session, now=NOW, reason="start", settings=settings)
    assert version is not None
    assert node_trajectory(db_session, a.id, now=NOW).power_at(NOW) == 5000.0  # 15 kW / 3

    # a runs far below its 5 kW with no queue; b is pinned at its allocation with a queue.
    for second in range(0, 120, 5):
        ts = NOW - timedelta(seconds=second)
        db_session.add_all(
            [
                TelemetrySample(
                    node_id=a.id,
                    ts=ts,
                    power_w=2400.0 + second,
                    throughput_tok_s=1,
                    requests_waiting=0,
                ),
                TelemetrySample(
                    node_id=b.id, ts=ts, power_w=4990.0, throughput_tok_s=1, requests_waiting=12
                ),
            ]
        )
    db_session.flush()
    later = NOW + timedelta(seconds=1)
    version = recompute_budget(db_session, now=later, reason="telemetry", settings=settings)
    assert version is not None
    demand = {n["id"]: n["demand_w"] for n in version.inputs["nodes"]}
    # max 2515 W x 1.1 = 2766.5 -> 2800 W (50 W steps); b and c report no spare power.
    assert demand == {a.id: 2800.0, b.id: None, c.id: None}
    power = {n.id: node_trajectory(db_session, n.id, now=later).power_at(later) for n in (a, b, c)}
    assert power == {a.id: 2800.0, b.id: 6000.0, c.id: 6000.0}
    # Same telemetry again: the demand holds (hysteresis), no new version.
    assert recompute_budget(db_session, now=later, reason="again", settings=settings) is None

    # a's load grows until it presses against its 2.8 kW: it gets a full share back, and then
    # a demand with 10 % headroom over its new peak.
    db_session.add(TelemetrySample(node_id=a.id, ts=later, power_w=2790.0, throughput_tok_s=1))
    db_session.flush()
    back = recompute_budget(db_session, now=later, reason="busier", settings=settings)
    assert back is not None
    assert node_trajectory(db_session, a.id, now=later).power_at(later) == 5000.0
    again = recompute_budget(db_session, now=later, reason="settle", settings=settings)
    assert again is not None
    assert {n["id"]: n["demand_w"] for n in again.inputs["nodes"]}[a.id] == 3100.0
    share = node_trajectory(db_session, a.id, now=later).power_at(later)
    assert share is not None and 2790.0 / 0.95 < share <= 3100.0
    assert recompute_budget(db_session, now=later, reason="stable", settings=settings) is None


def test_measured_baseline_comes_from_recent_telemetry(
    db_session: Session, database_url: str
) -> None:
    settings = measured_settings(database_url)
    a = add_node(db_session, "a")
    for minute in range(15):
        db_session.add(
            TelemetrySample(
                node_id=a.id,
                ts=NOW - timedelta(minutes=minute),
                power_w=4000.0 + (1000.0 if minute % 2 else 0.0),
                throughput_tok_s=1,
            )
        )
    db_session.flush()
    curtail(db_session, settings, start=NOW, reduction_pct=50)
    plan = timeline(db_session, start=NOW, end=NOW + timedelta(hours=1), now=NOW, settings=settings)
    # 10 kW overhead + mean(4, 5, 4, ... 15 samples: 8 x 4 kW, 7 x 5 kW) = 14.4667 -> 14.5 kW.
    assert plan.baseline_kind == "measured" and plan.baseline_kw == pytest.approx(14.5)
    assert plan.segments[0].facility_limit_kw == pytest.approx(7.25)


def test_upcoming_boundaries_skip_cancelled_and_superseded(
    db_session: Session, settings: GridlinkSettings
) -> None:
    keep = curtail(db_session, settings, start=NOW + timedelta(hours=1), limit_kw=50)
    gone = curtail(db_session, settings, start=NOW + timedelta(hours=2), limit_kw=50)
    curtailments.cancel_curtailment(db_session, gone, actor=SYSTEM, now=NOW)
    curtail(
        db_session,
        settings,
        external_id="x",
        start=NOW + timedelta(hours=4),
        limit_kw=50,
    )
    curtail(
        db_session,
        settings,
        external_id="x",
        start=NOW + timedelta(hours=5),
        limit_kw=50,
    )  # supersedes the 4 h version
    assert keep
    got = upcoming_boundaries(db_session, after=NOW, until=NOW + timedelta(hours=6))
    assert [(t - NOW) / timedelta(hours=1) for t in got] == [1, 2, 5, 6]
    # (after, until]: an instant equal to `after` is excluded, one equal to `until` included.
    got = upcoming_boundaries(
        db_session, after=NOW + timedelta(hours=1), until=NOW + timedelta(hours=5)
    )
    assert [(t - NOW) / timedelta(hours=1) for t in got] == [2, 5]


def test_trajectory_of_unknown_node_and_before_any_version(
    db_session: Session, settings: GridlinkSettings
) -> None:
    with pytest.raises(NotFoundError, match="node 999"):
        node_trajectory(db_session, 999, now=NOW)
    a = add_node(db_session, "a")
    empty = node_trajectory(db_session, a.id, now=NOW)
    assert empty.version_id is None and empty.segments == []


def test_offline_nodes_get_no_allocation(db_session: Session, settings: GridlinkSettings) -> None:
    a, b = add_node(db_session, "a"), add_node(db_session, "b")
    b.last_seen_at = NOW - timedelta(seconds=settings.node_offline_after_s + 1)
    version = recompute_budget(db_session, now=NOW, reason="test", settings=settings)
    assert version is not None
    assert [n["id"] for n in version.inputs["nodes"]] == [a.id]
    assert node_trajectory(db_session, b.id, now=NOW).segments == []


def test_measured_baseline_is_frozen_during_an_event(
    db_session: Session, database_url: str
) -> None:
    settings = measured_settings(database_url).model_copy(update={"node_offline_after_s": 3600.0})
    a = add_node(db_session, "a")

    def report(at: datetime, power_w: float) -> None:
        for minute in range(15):
            db_session.add(
                TelemetrySample(
                    node_id=a.id,
                    ts=at - timedelta(minutes=minute),
                    power_w=power_w,
                    throughput_tok_s=1,
                )
            )
        db_session.flush()

    report(NOW, 6000.0)  # 10 + 6 = 16 kW before the event
    curtail(db_session, settings, start=NOW + timedelta(minutes=1), reduction_pct=25)
    before = recompute_budget(db_session, now=NOW, reason="planned", settings=settings)
    assert before is not None and before.inputs["baseline"]["measured_kw"] == 16.0

    during = NOW + timedelta(minutes=40)
    report(during, 2000.0)  # curtailed: 12 kW measured
    plan = timeline(
        db_session, start=during, end=during + timedelta(minutes=5), now=during, settings=settings
    )
    assert plan.baseline_kw == 16.0  # not 12: the reduction stays 25 % of the pre-event power
    assert plan.segments[0].facility_limit_kw == pytest.approx(12.0)

    after = NOW + timedelta(hours=3)  # event over and out of the window: measured again
    report(after, 5000.0)
    plan = timeline(
        db_session, start=after, end=after + timedelta(minutes=5), now=after, settings=settings
    )
    assert plan.baseline_kw == 15.0
