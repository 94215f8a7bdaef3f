"""The VEN's poll and report jobs on the gateway scheduler: run by the leader, at once when it
gains leadership, and again by a new leader after a restart without duplicating anything."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.db.engine import build_sessionmaker
from gridlink.models import (
    AuditEntry,
    BudgetAllocations,
    BudgetVersion,
    Event,
    EventInterval,
    ScheduleJob,
)
from gridlink.models.openadr import OpenAdrEvent, OpenAdrState
from gridlink.models.price import PricePoint
from gridlink.openadr.jobs import integration_jobs
from gridlink.scheduler.budget_ops import ServiceBudgetOps
from gridlink.scheduler.runner import GatewayScheduler
from gridlink.settings import GridlinkSettings
from tests.gridlink.fakes import (
    RecordingPublisher,
    committed_database_url,
    committed_engine,
    wait_until,
)
from tests.gridlink.openadr.conftest import PROGRAM, event_body
from tests.gridlink.openadr.fake_vtn import FakeVtn, VtnServer

__all__ = ["committed_database_url", "committed_engine"]

TABLES = (OpenAdrEvent, OpenAdrState, PricePoint, ScheduleJob, BudgetAllocations, BudgetVersion)


def _wipe(engine: Engine) -> None:
    with Session(engine) as session:
        for model in TABLES:
            session.execute(delete(model))
        session.execute(delete(EventInterval))
        session.execute(delete(Event))
        session.execute(delete(AuditEntry))
        session.commit()


@pytest.fixture
def committed(committed_engine: Engine) -> Iterator[sessionmaker[Session]]:
    _wipe(committed_engine)
    yield build_sessionmaker(committed_engine)
    _wipe(committed_engine)


def _count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_poll_runs_on_the_leader_and_again_after_a_restart(
    committed: sessionmaker[Session], vtn: FakeVtn, vtn_server: VtnServer
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    vtn.put_event("ev-1", event_body(start, [{"type": "SIMPLE", "values": [2]}]))
    url = committed.kw["bind"].url.render_as_string(hide_password=False)
    settings = GridlinkSettings(
        database_url=url,
        facility_max_kw=100.0,
        scheduler_leader_retry_s=0.2,
        openadr_enabled=True,
        openadr_vtn_url=vtn_server.url,
        openadr_client_id="ven-client",
        openadr_client_secret="s3cret",
        openadr_program_ids=[PROGRAM],
        openadr_poll_interval_s=3600.0,
    )
    for attempt in (1, 2):  # the second scheduler is the gateway after a restart
        publisher = RecordingPublisher()
        with ExitStack() as closers:
            jobs = integration_jobs(committed, settings, publisher, closers)
            assert [j.job_id for j in jobs] == ["openadr-poll", "openadr-report"]
            scheduler = GatewayScheduler(
                committed,
                ServiceBudgetOps(settings),
                publisher,
                settings,
                database_url=url,
                owner=f"gateway-{attempt}",
                leader_jobs=jobs,
            )
            scheduler.start()
            try:
                assert wait_until(lambda: _count(committed, OpenAdrEvent) == 1)
                assert wait_until(lambda: ("GET", "/events") in vtn.requests)
                if attempt == 1:
                    assert wait_until(lambda p=publisher: bool(p.published))  # type: ignore[misc]
            finally:
                scheduler.stop()
        vtn.requests.clear()
    assert _count(committed, OpenAdrEvent) == 1
    assert _count(committed, Event) == 1  # the same event after the restart: no new version
    assert len(vtn.vens) == 1  # registered once, found again after the restart
