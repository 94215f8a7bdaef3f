"""Two gateway replicas on one PostgreSQL database share the subscribers: a change made through
either replica's API reaches the streams held on both (the replica commits and NOTIFYs
gridlink_budget; each replica's LISTEN connection feeds its broadcaster and its streams)."""

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
from gridlink.streams.client import AllocationUpdate, follow_allocation
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
            later = start + timedelta(hours=2)

            async def change(via: str, at: datetime, limit_kw: float) -> None:
                body = {"start": at.isoformat(), "duration_s": 600, "limit_kw": limit_kw}
                async with httpx.AsyncClient(trust_env=False) as http:
                    created = await http.post(f"{via}/v1/curtailments", headers=auth, json=body)
                    assert created.status_code == 201, created.text

            async def scenario() -> list[list[tuple[int, float | None]]]:
                """Two subscribers on each replica; a change through A, then one through B."""
                urls = (url_a, url_a, url_b, url_b)
                streams = [follow_allocation(u, node_id, admin) for u in urls]

                async def next_all() -> list[AllocationUpdate]:
                    return await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 5)

                seen: list[list[tuple[int, float | None]]] = [
                    [(f.version_id, None)] for f in await next_all()
                ]
                for via, at, limit_kw in ((url_a, start, 2.0), (url_b, later, 3.0)):
                    await change(via, at, limit_kw)
                    for got, update in zip(seen, await next_all(), strict=True):
                        power_w = update.trajectory.power_at(at + timedelta(seconds=1))
                        got.append((update.version_id, power_w))
                for stream in streams:
                    await stream.aclose()
                return seen

            seen = asyncio.run(scenario())
            assert all(s == seen[0] for s in seen), seen  # every subscriber saw the same
            (first_id, _), (via_a, power_a), (via_b, power_b) = seen[0]
            assert first_id < via_a < via_b
            assert power_a == pytest.approx(2000.0, abs=1.0)
            assert power_b == pytest.approx(3000.0, abs=1.0)
            for app in (app_a, app_b):  # each replica hears every NOTIFY, its own included
                deadline = time.monotonic() + 5
                while app.state.allocation_feed.latest.version_id != via_b:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
    finally:
        engine.dispose()
