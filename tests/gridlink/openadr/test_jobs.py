"""The VEN's poll and report jobs on the gateway scheduler: run by the leader, at once when it
gains leadership, and again by a new leader after a restart without duplicating anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

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
    Node,
    ScheduleJob,
    TelemetrySample,
)
from gridlink.models.openadr import OpenAdrEvent, OpenAdrState
from gridlink.models.price import PricePoint
from gridlink.openadr.jobs import integration_jobs
from gridlink.scheduler.budget_ops import ServiceBudgetOps
from gridlink.scheduler.runner import GatewayScheduler, LeaderJob
from gridlink.settings import GridlinkSettings
from tests.gridlink.fakes import (
    RecordingPublisher,
    committed_database_url,
    committed_engine,
    wait_until,
)
from tests.gridlink.openadr.conftest import PROGRAM, event_body
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import VtnServer
from tests.gridlink.reports.fleet import add_node, add_samples

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


def _settings(
    committed: sessionmaker[Session], vtn_server: VtnServer, **extra: Any
) -> GridlinkSettings:
    """A gateway polling the VTN as a VEN of ``PROGRAM`` (by hand: the poll timer is an hour)."""
    return GridlinkSettings(
        database_url=committed.kw["bind"].url.render_as_string(hide_password=False),
        facility_max_kw=100.0,
        scheduler_leader_retry_s=0.2,
        openadr_enabled=True,
        openadr_vtn_url=vtn_server.url,
        openadr_client_id="ven-client",
        openadr_client_secret="s3cret",
        openadr_program_ids=[PROGRAM],
        openadr_poll_interval_s=3600.0,
        **extra,
    )


@contextmanager
def _leader(
    committed: sessionmaker[Session], settings: GridlinkSettings, owner: str
) -> Iterator[tuple[RecordingPublisher, list[LeaderJob]]]:
    """A gateway scheduler running the OpenADR jobs as leader, stopped on exit (a restart)."""
    publisher = RecordingPublisher()
    with ExitStack() as closers:
        jobs = integration_jobs(committed, settings, publisher, closers)
        scheduler = GatewayScheduler(
            committed,
            ServiceBudgetOps(settings),
            publisher,
            settings,
            database_url=settings.effective_database_url,
            owner=owner,
            leader_jobs=jobs,
        )
        scheduler.start()
        try:
            yield publisher, jobs
        finally:
            scheduler.stop()


def test_poll_runs_on_the_leader_and_again_after_a_restart(
    committed: sessionmaker[Session], vtn: FakeVtn, vtn_server: VtnServer
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    vtn.put_event("ev-1", event_body(start, [{"type": "SIMPLE", "values": [2]}]))
    settings = _settings(committed, vtn_server)
    for attempt in (1, 2):  # the second scheduler is the gateway after a restart
        with _leader(committed, settings, f"gateway-{attempt}") as (publisher, jobs):
            assert [j.job_id for j in jobs] == ["openadr-poll", "openadr-report"]
            assert wait_until(lambda: _count(committed, OpenAdrEvent) == 1)
            assert wait_until(lambda: ("GET", "/events") in vtn.requests)
            if attempt == 1:
                assert wait_until(lambda p=publisher: bool(p.published))  # type: ignore[misc]
        vtn.requests.clear()
    assert _count(committed, OpenAdrEvent) == 1
    assert _count(committed, Event) == 1  # the same event after the restart: no new version
    assert len(vtn.vens) == 1  # registered once, found again after the restart


def test_periodic_reports_on_the_leader_survive_a_restart(
    committed: sessionmaker[Session], vtn: FakeVtn, vtn_server: VtnServer
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(seconds=6)  # four 5-second intervals: one over, three to come
    with committed() as session:
        node = add_node(session, "n1")
        add_samples(
            session, node.id, now - timedelta(minutes=20), now + timedelta(minutes=2), period_s=1.0
        )
        session.commit()
    body = event_body(start, [{"type": "IMPORT_CAPACITY_LIMIT", "values": [60]}])
    body["intervalPeriod"]["duration"] = "PT5S"
    body["intervals"] = [{"id": k, "payloads": body["intervals"][0]["payloads"]} for k in range(4)]
    every = {"numIntervals": 1, "frequency": 1, "repeat": -1}
    body["reportDescriptors"] = [{"payloadType": "DEMAND", "units": "KW"} | every]
    vtn.put_event("ev-1", body)
    settings = _settings(committed, vtn_server, openadr_report_interval_s=0.5)
    try:
        for attempt, expected in ((1, 2), (2, 4)):  # restarted mid-event: the rest, nothing twice
            with _leader(committed, settings, f"gateway-{attempt}"):
                assert wait_until(lambda n=expected: len(vtn.reports) >= n, timeout_s=30.0)  # type: ignore[misc]
        time.sleep(1.0)
    finally:
        with committed() as session:  # the committed database is shared: leave no node behind
            session.execute(delete(TelemetrySample).where(TelemetrySample.node_id == node.id))
            session.execute(delete(Node).where(Node.id == node.id))
            session.commit()
    starts = [r["resources"][0]["intervals"][0]["intervalPeriod"]["start"] for r in vtn.reports]
    assert len(starts) == len(set(starts)) == 4  # one report per interval, none repeated
    assert vtn.violations == []
