"""Node status from last contact, persisted by refresh_statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from gridlink.models.node import Node, NodeStatus
from gridlink.nodes.service import refresh_statuses
from gridlink.settings import GridlinkSettings

NOW = datetime(2026, 7, 1, tzinfo=UTC)


def test_refresh_statuses(db_session: Session, database_url: str) -> None:
    settings = GridlinkSettings(
        database_url=database_url, node_stale_after_s=30, node_offline_after_s=300
    )
    ages_s = {"fresh": 10, "quiet": 60, "gone": 600}
    nodes = {
        name: Node(
            name=name,
            gpu_type="H100",
            gpu_count=1,
            min_power_w=200,
            max_power_w=700,
            curve=[],
            last_seen_at=NOW - timedelta(seconds=age),
        )
        for name, age in ages_s.items()
    }
    db_session.add_all(nodes.values())
    db_session.flush()
    assert refresh_statuses(db_session, now=NOW, settings=settings) == 2
    assert {n: node.status for n, node in nodes.items()} == {
        "fresh": NodeStatus.ONLINE,
        "quiet": NodeStatus.STALE,
        "gone": NodeStatus.OFFLINE,
    }
    assert refresh_statuses(db_session, now=NOW, settings=settings) == 0
