"""The allocation stream over a real loopback connection, followed with the project's client."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from gridlink.models import Role
from gridlink.settings import GridlinkSettings
from gridlink.streams.client import AllocationStreamError, AllocationUpdate, follow_allocation
from tests.gridlink.fakes import add_node, add_token, add_version
from tests.gridlink.live import live_gateway

# Allocations in the future: a stream sends the segments that have not ended yet.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


def _settings(url: str, **overrides: float) -> GridlinkSettings:
    values: dict[str, object] = {
        "database_url": url,
        "scheduler_enabled": False,
        "stream_heartbeat_s": 0.2,
        "stream_lifetime_s": 30.0,
        "stream_retry_ms": 50,
        **overrides,
    }
    return GridlinkSettings(**values)  # type: ignore[arg-type]


def _url(factory: sessionmaker[Session]) -> str:
    return factory.kw["bind"].url.render_as_string(hide_password=False)


def _new_version(factory: sessionmaker[Session], node_id: int, power_w: float) -> int:
    with factory() as session:
        version = add_version(session, {node_id: [(T0, 3600, power_w)]})
        session.commit()
        return version.id


async def _take(stream: object, count: int, timeout_s: float = 5.0) -> list[AllocationUpdate]:
    updates: list[AllocationUpdate] = []

    async def run() -> None:
        async for update in stream:  # type: ignore[attr-defined]
            updates.append(update)
            if len(updates) == count:
                return

    await asyncio.wait_for(run(), timeout_s)
    return updates


def test_initial_trajectory_then_each_new_version(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        node_id = add_node(session, "n1").id
        segments = [(T0, 600, 500.0), (T0 + timedelta(minutes=10), 600, 400.0)]
        first = add_version(session, {node_id: segments})
        token = add_token(session, Role.NODE, node_id=node_id)
        session.commit()
        first_id = first.id

    with live_gateway(_settings(_url(factory))) as (base_url, app):

        async def scenario() -> list[AllocationUpdate]:
            stream = follow_allocation(base_url, node_id, token)
            (initial,) = await _take(stream, 1)
            second = await asyncio.to_thread(_new_version, factory, node_id, 300.0)
            app.state.publisher.publish(second)
            (update,) = await _take(stream, 1)
            await stream.aclose()
            return [initial, update]

        initial, update = asyncio.run(scenario())
    assert initial.version_id == first_id
    assert initial.trajectory.node_id == node_id
    assert [s.power_w for s in initial.trajectory.segments] == [500.0, 400.0]
    assert initial.trajectory.power_at(T0 + timedelta(minutes=11)) == 400.0
    assert update.version_id > first_id
    assert [s.power_w for s in update.trajectory.segments] == [300.0]


def test_heartbeats_lifetime_reconnect_and_resume_without_resend(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session:
        node_id = add_node(session, "n1").id
        version_id = add_version(session, {node_id: [(T0, 600, 500.0)]}).id
        token = add_token(session, Role.ADMIN)
        session.commit()
    settings = _settings(_url(factory), stream_lifetime_s=0.5, stream_heartbeat_s=0.15)
    auth = {"Authorization": f"Bearer {token}"}

    with live_gateway(settings) as (base_url, _app):
        url = f"{base_url}/v1/nodes/{node_id}/allocation/stream"
        with httpx.Client(timeout=5, trust_env=False) as client:
            with client.stream("GET", url, headers=auth) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                body = response.read().decode()
            events = [e for e in body.split("\n\n") if e]
            assert events[0].startswith(f"id: {version_id}\nevent: allocation\ndata: ")
            assert json.loads(events[0].split("data: ", 1)[1])["version_id"] == version_id
            assert sum(e.startswith("event: heartbeat") for e in events) >= 2
            assert events[-1] == 'event: reconnect\ndata: {"reason": "lifetime"}\nretry: 50'

            # Resuming with the version already held: no allocation is resent.
            headers = {**auth, "Last-Event-ID": str(version_id)}
            with client.stream("GET", url, headers=headers) as response:
                body = response.read().decode()
            assert "event: allocation" not in body and "event: reconnect" in body

        async def follow_across_reconnects() -> list[AllocationUpdate]:
            updates: list[AllocationUpdate] = []
            stream = follow_allocation(base_url, node_id, token)

            async def run() -> None:
                async for update in stream:
                    updates.append(update)

            with pytest.raises(TimeoutError):
                await asyncio.wait_for(run(), 1.3)  # spans at least two stream lifetimes
            return updates

        updates = asyncio.run(follow_across_reconnects())
    assert [u.version_id for u in updates] == [version_id]


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        ("nobody", "own", 401),
        ("node", "other", 403),
        ("admin", "missing", 404),
    ],
)
def test_refusals_are_final(
    factory: sessionmaker[Session], who: str, target: str, status: int
) -> None:
    with factory() as session:
        own = add_node(session, "own").id
        other = add_node(session, "other").id
        tokens = {
            "nobody": None,
            "node": add_token(session, Role.NODE, node_id=own),
            "admin": add_token(session, Role.ADMIN),
        }
        session.commit()
    node_id = {"own": own, "other": other, "missing": 999_999}[target]
    with live_gateway(_settings(_url(factory))) as (base_url, _app):

        async def scenario() -> None:
            async for _ in follow_allocation(base_url, node_id, tokens[who]):
                pass

        with pytest.raises(AllocationStreamError, match=str(status)):
            asyncio.run(scenario())


def test_open_streams_hold_no_database_connection(factory: sessionmaker[Session]) -> None:
    """More concurrent streams than the connection pool (5 + 10 overflow) all connect at once:
    a stream authenticates and reads in one short session, then holds no connection."""
    with factory() as session:
        node_id = add_node(session, "n1").id
        version_id = add_version(session, {node_id: [(T0, 600, 500.0)]}).id
        token = add_token(session, Role.NODE, node_id=node_id)
        session.commit()

    with live_gateway(_settings(_url(factory))) as (base_url, app):

        async def scenario() -> list[int]:
            async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
                streams = [
                    follow_allocation(base_url, node_id, token, client=http) for _ in range(40)
                ]
                firsts = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 15)
                # The feed's revocation check borrows one connection at each heartbeat, for all
                # streams at once: between two checks no connection is out.
                samples = []
                for _ in range(20):
                    samples.append(app.state.engine.pool.checkedout())
                    await asyncio.sleep(0.02)
                assert min(samples) == 0 and max(samples) <= 1, samples
                for stream in streams:
                    await stream.aclose()
                return [u.version_id for u in firsts]

        assert asyncio.run(scenario()) == [version_id] * 40


def test_a_revoked_token_ends_its_open_stream_within_one_heartbeat(
    factory: sessionmaker[Session],
) -> None:
    from gridlink.auth.principal import SYSTEM
    from gridlink.auth.service import revoke_token
    from gridlink.models import ApiToken

    with factory() as session:
        node_id = add_node(session, "n1").id
        add_version(session, {node_id: [(T0, 600, 500.0)]})
        token = add_token(session, Role.NODE, node_id=node_id)
        kept = add_token(session, Role.ADMIN)
        session.commit()
        token_id = max(t.id for t in session.query(ApiToken).filter(ApiToken.role == Role.NODE))
    heartbeat_s = 0.3
    settings = _settings(_url(factory), stream_heartbeat_s=heartbeat_s)
    with live_gateway(settings) as (base_url, _app):
        url = f"{base_url}/v1/nodes/{node_id}/allocation/stream"

        async def scenario() -> tuple[str, str, float]:
            mine_auth = {"Authorization": f"Bearer {token}"}
            other_auth = {"Authorization": f"Bearer {kept}"}
            async with (
                httpx.AsyncClient(timeout=10, trust_env=False) as http,
                http.stream("GET", url, headers=mine_auth) as mine,
                http.stream("GET", url, headers=other_auth) as other,
            ):
                lines = mine.aiter_lines()
                assert (await anext(lines)).startswith("id: ")  # the allocation arrived
                with factory() as session:
                    revoke_token(session, token_id, actor=SYSTEM, now=datetime.now(UTC))
                    session.commit()
                revoked_at = asyncio.get_running_loop().time()
                body = "\n".join([line async for line in lines])
                ended_after_s = asyncio.get_running_loop().time() - revoked_at
                other_lines = other.aiter_lines()
                still_open = "\n".join([await anext(other_lines) for _ in range(8)])
                return body, still_open, ended_after_s

        body, still_open, ended_after_s = asyncio.run(scenario())
    assert 'event: reconnect\ndata: {"reason": "revoked"}' in body
    assert ended_after_s < 2 * heartbeat_s + 0.5
    assert "event: heartbeat" in still_open  # the admin's stream goes on

    async def reconnect() -> None:
        async for _ in follow_allocation(base_url, node_id, token):
            pass

    with (
        live_gateway(settings) as (base_url, _app),
        pytest.raises(AllocationStreamError, match="401"),
    ):
        asyncio.run(reconnect())
