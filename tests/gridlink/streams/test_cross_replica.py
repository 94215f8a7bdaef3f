"""Two gateway replicas on one PostgreSQL database: a version published on A reaches a stream
held on B (NOTIFY gridlink_budget -> B's LISTEN connection -> B's broadcaster)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker
from gridlink.models import Role
from gridlink.settings import GridlinkSettings
from gridlink.streams.client import follow_allocation
from tests.gridlink.fakes import add_node, add_token, add_version
from tests.gridlink.live import live_gateway

T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


@pytest.mark.postgresql
def test_a_change_on_one_replica_reaches_a_stream_on_the_other(
    make_database: Callable[[str], str],
) -> None:
    url = make_database("postgresql")
    migrate.upgrade(url)
    engine = build_engine(url)
    factory = build_sessionmaker(engine)
    with factory() as session:
        node_id = add_node(session, "n1").id
        first = add_version(session, {node_id: [(T0, 600, 500.0)]}).id
        token = add_token(session, Role.NODE, node_id=node_id)
        session.commit()
    settings = GridlinkSettings(
        database_url=url, scheduler_enabled=False, stream_heartbeat_s=1.0, stream_retry_ms=50
    )
    try:
        with live_gateway(settings) as (_url_a, app_a), live_gateway(settings) as (url_b, app_b):

            async def scenario() -> list[int]:
                stream = follow_allocation(url_b, node_id, token)
                seen = [(await anext(stream)).version_id]
                with factory() as session:
                    second = add_version(session, {node_id: [(T0, 600, 250.0)]}).id
                    session.commit()
                app_a.state.publisher.publish(second)  # committed and announced on A only
                update = await asyncio.wait_for(anext(stream), 5)
                seen.append(update.version_id)
                assert update.trajectory.power_at(T0) == 250.0
                await stream.aclose()
                return seen

            seen = asyncio.run(scenario())
            assert seen[0] == first and seen[1] > first
            assert app_b.state.allocation_feed.latest.version_id == seen[1]
    finally:
        engine.dispose()
