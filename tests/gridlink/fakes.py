"""Small test doubles for the scheduler and streams tests: budget operations that write real
budget versions, and a publisher that records what it was told."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth.principal import SYSTEM
from gridlink.auth.service import create_token
from gridlink.budgets import repository as budgets_repository
from gridlink.budgets.matrix import AllocationMatrix, AllocationPiece
from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker
from gridlink.models import ApiToken, BudgetAllocations, BudgetVersion, Node, Role, ScheduleJob
from tests.conftest import BACKENDS


class FakeBudgetOps:
    """Boundaries from a list the test controls; each recompute stores a new BudgetVersion.

    ``hold_s`` keeps the recompute's transaction open that long (to make races overlap);
    ``fail_next`` makes the next recompute raise, as a crash mid-transaction would.
    """

    def __init__(self, boundaries: list[datetime] | None = None, *, hold_s: float = 0.0) -> None:
        self.boundary_list: list[datetime] = list(boundaries or [])
        self.recomputes: list[tuple[datetime, str]] = []
        self.hold_s = hold_s
        self.fail_next = False
        self._lock = threading.Lock()

    def recompute(self, session: Session, *, now: datetime, reason: str) -> int | None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("recompute failed")
        if self.hold_s:
            time.sleep(self.hold_s)
        version = BudgetVersion(reason=reason, inputs={"now": now.isoformat()}, trajectory=[])
        session.add(version)
        session.flush()
        with self._lock:
            self.recomputes.append((now, reason))
        return version.id

    def boundaries(self, session: Session, *, after: datetime, until: datetime) -> list[datetime]:
        return [t for t in self.boundary_list if after < t <= until]


class RecordingPublisher:
    def __init__(self, then: Callable[[int], None] | None = None) -> None:
        self.published: list[int] = []
        self._then = then

    def publish(self, version_id: int) -> None:
        self.published.append(version_id)
        if self._then is not None:
            self._then(version_id)


def wipe(engine: Engine) -> None:
    """Empty the tables these tests write (they share one migrated database per backend)."""
    with Session(engine) as session:
        for model in (ScheduleJob, BudgetAllocations, BudgetVersion, ApiToken, Node):
            session.execute(delete(model))
        session.commit()


def add_token(session: Session, role: Role = Role.ADMIN, *, node_id: int | None = None) -> str:
    """A bearer token (plaintext) of ``role``; node tokens are bound to ``node_id``."""
    plaintext, _ = create_token(
        session,
        role=role,
        name=f"test-{role.value}-{node_id}",
        node_id=node_id,
        actor=SYSTEM,
        now=datetime.now(UTC),
    )
    return plaintext


def add_node(session: Session, name: str, *, min_w: float = 100.0, max_w: float = 700.0) -> Node:
    node = Node(name=name, gpu_type="H100-SXM", gpu_count=1, min_power_w=min_w, max_power_w=max_w)
    session.add(node)
    session.flush()
    return node


def add_version(
    session: Session, allocations: dict[int, list[tuple[datetime, float, float]]]
) -> BudgetVersion:
    """A budget version with, per node, segments (start, duration_s, power_w)."""
    version = BudgetVersion(reason="test", inputs={}, trajectory=[])
    matrix = AllocationMatrix.from_pieces(
        AllocationPiece(node_id, start, start + timedelta(seconds=duration_s), power_w)
        for node_id, segments in allocations.items()
        for start, duration_s, power_w in segments
    )
    budgets_repository.add_version(session, version, matrix)
    session.flush()
    return version


# -- fixtures shared by tests/gridlink/scheduler and tests/gridlink/streams ----------------------
# Each backend gets its own migrated database for these tests: they commit (a scheduler and a
# stream see only committed data), so they stay off the rolled-back database other tests share.


@pytest.fixture(scope="session", params=BACKENDS)
def committed_database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("make_database")(request.param)
    migrate.upgrade(url)
    return url


@pytest.fixture
def committed_engine(committed_database_url: str) -> Iterator[Engine]:
    engine = build_engine(committed_database_url)
    wipe(engine)
    yield engine
    wipe(engine)
    engine.dispose()


@pytest.fixture
def factory(committed_engine: Engine) -> sessionmaker[Session]:
    """A committing session factory on an emptied database."""
    return build_sessionmaker(committed_engine)


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
