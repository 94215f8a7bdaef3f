"""Two gateway replicas on one PostgreSQL database: a change made through replica A's API
reaches a stream held on replica B (A commits, NOTIFY gridlink_budget, B's LISTEN connection,
B's broadcaster, B's stream)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker
from gridlink.models import Role
from gridlink.settings import GridlinkSettings
from gridlink.streams.client import follow_allocation
from tests.gridlink.fakes import add_token
from tests.gridlink.live import live_gateway


@pytest.mark.postgresql
def test_a_change_on_one_replica_reaches_a_stream_on_the_other(
    make_database: Callable[[str], str],
) -> None:
    url = make_database("postgresql")
    migrate.upgrade(url)
    engine = build_engine(url)
    with build_sessionmaker(engine)() as session:
        admin = add_token(session, Role.ADMIN)
        session.commit()
    auth = {"Authorization": f"Bearer {admin}"}
    settings = GridlinkSettings(
        database_url=url,
        scheduler_enabled=False,
        facility_max_kw=100.0,
        stream_heartbeat_s=1.0,
        stream_retry_ms=50,
    )
    try:
        with live_gateway(settings) as (url_a, app_a), live_gateway(settings) as (url_b, app_b):
            node = httpx.post(
                f"{url_a}/v1/nodes",
                headers=auth,
                json={
                    "name": "n1",
                    "gpu_type": "H100-SXM",
                    "gpu_count": 8,
                    "gpu_min_cap_w": 200.0,
                    "gpu_max_cap_w": 700.0,
                },
                trust_env=False,
            )
            assert node.status_code in (200, 201), node.text
            node_id = node.json()["id"]
            start = datetime.now(UTC) + timedelta(hours=1)

            async def scenario() -> tuple[int, int, float | None]:
                stream = follow_allocation(url_b, node_id, admin)
                first = await asyncio.wait_for(anext(stream), 5)
                async with httpx.AsyncClient(trust_env=False) as http:
                    created = await http.post(
                        f"{url_a}/v1/curtailments",
                        headers=auth,
                        json={"start": start.isoformat(), "duration_s": 600, "limit_kw": 2.0},
                    )
                    assert created.status_code == 201, created.text
                update = await asyncio.wait_for(anext(stream), 5)
                await stream.aclose()
                power = update.trajectory.power_at(start + timedelta(seconds=1))
                return first.version_id, update.version_id, power

            first_id, update_id, power_w = asyncio.run(scenario())
            assert update_id > first_id
            assert power_w == pytest.approx(2000.0, abs=1.0)
            # A hears its own NOTIFY too (one path for every replica's streams).
            deadline = time.monotonic() + 5
            while app_a.state.allocation_feed.latest.version_id != update_id:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert app_b.state.allocation_feed.latest.version_id == update_id
    finally:
        engine.dispose()
