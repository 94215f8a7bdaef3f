"""The default fixed baseline fits the registered fleet (not the facility maximum it never
reaches), so a percentage reduction binds."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from gridlink.budgets.inputs import baseline_policy, default_fixed_baseline_kw
from gridlink.models.node import Node, NodeStatus
from gridlink.settings import GridlinkSettings

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)


def _node(session: Session, name: str, max_power_w: float, status: NodeStatus) -> None:
    session.add(
        Node(
            name=name,
            gpu_type="H100",
            gpu_count=8,
            min_power_w=2000.0,
            max_power_w=max_power_w,
            gpu_min_cap_w=200.0,
            gpu_max_cap_w=700.0,
            status=status,
        )
    )
    session.flush()


def test_default_baseline_is_the_fleet_maximum_plus_overhead(db_session: Session) -> None:
    settings = GridlinkSettings(facility_max_kw=1000.0, facility_overhead_kw=2.0)
    assert default_fixed_baseline_kw(db_session, settings) == 1000.0  # no node yet
    _node(db_session, "a", 6000.0, NodeStatus.ONLINE)
    _node(db_session, "b", 6000.0, NodeStatus.STALE)
    _node(db_session, "gone", 6000.0, NodeStatus.OFFLINE)  # offline nodes draw nothing
    assert default_fixed_baseline_kw(db_session, settings) == 14.0
    assert baseline_policy(db_session, now=NOW, settings=settings).resolve_kw() == 14.0


def test_default_baseline_is_capped_and_an_explicit_one_wins(db_session: Session) -> None:
    _node(db_session, "big", 50_000.0, NodeStatus.ONLINE)
    assert default_fixed_baseline_kw(db_session, GridlinkSettings(facility_max_kw=30.0)) == 30.0
    explicit = GridlinkSettings(facility_max_kw=30.0, baseline_fixed_kw=25.0)
    assert default_fixed_baseline_kw(db_session, explicit) == 25.0
