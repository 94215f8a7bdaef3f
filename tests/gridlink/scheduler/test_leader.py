"""Leader election on PostgreSQL: two replicas, exactly one leader, takeover when it dies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from gridlink.scheduler.leader import AdvisoryLockElector, SingleProcessElector


class Replica:
    def __init__(self, conninfo: str, name: str) -> None:
        self.events: list[str] = []
        self.elected = threading.Event()
        self.elector = AdvisoryLockElector(
            conninfo,
            on_elected=self._elected,
            on_demoted=lambda: self.events.append("demoted"),
            retry_s=0.1,
            name=name,
        )

    def _elected(self) -> None:
        self.events.append("elected")
        self.elected.set()


def _wait(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def conninfo(make_database: Callable[[str], str]) -> str:
    url = make_database("postgresql")
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def replicas(conninfo: str) -> Iterator[tuple[Replica, Replica]]:
    a, b = Replica(conninfo, "replica-a"), Replica(conninfo, "replica-b")
    yield a, b
    a.elector.stop()
    b.elector.stop()


def _leaders(*replicas: Replica) -> list[Replica]:
    return [r for r in replicas if r.elector.is_leader]


@pytest.mark.postgresql
def test_exactly_one_leader_and_takeover_when_it_stops(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    a.elector.start()
    assert a.elected.wait(5)
    b.elector.start()
    time.sleep(0.5)  # b has campaigned several times by now
    assert _leaders(a, b) == [a] and b.events == []

    a.elector.stop()
    assert a.events == ["elected", "demoted"]
    assert b.elected.wait(5)
    assert _leaders(a, b) == [b]


@pytest.mark.postgresql
def test_takeover_when_the_leaders_connection_dies(
    replicas: tuple[Replica, Replica], conninfo: str
) -> None:
    """As when the leader's process is killed: its backend goes away and the lock with it."""
    a, b = replicas
    a.elector.start()
    assert a.elected.wait(5)
    b.elector.start()
    time.sleep(0.3)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'replica-a-leader'"
        ).fetchall()
    assert killed == [(True,)]
    assert b.elected.wait(5)
    assert _wait(lambda: a.events == ["elected", "demoted"])
    assert _leaders(a, b) == [b]
    # The old leader campaigns again as a follower and does not get the lock back.
    time.sleep(0.3)
    assert _leaders(a, b) == [b] and a.events == ["elected", "demoted"]


def test_single_process_elector_leads_at_once() -> None:
    events: list[str] = []
    elector = SingleProcessElector(lambda: events.append("up"), lambda: events.append("down"))
    elector.start()
    assert elector.is_leader and events == ["up"]
    elector.stop()
    assert not elector.is_leader and events == ["up", "down"]
