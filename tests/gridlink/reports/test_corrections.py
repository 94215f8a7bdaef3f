"""Automatic corrections: telemetry stored after its window was reported makes a new version,
linked to the previous one, after the debounce, on the scheduler's report check; a replay that
changes nothing makes none; a check that dies leaves the correction due."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth.principal import SYSTEM
from gridlink.db.engine import session_scope
from gridlink.models.audit import AuditEntry
from gridlink.models.event import Event
from gridlink.models.node import Node
from gridlink.models.report import Report
from gridlink.models.telemetry import TelemetryLateArrival
from gridlink.reports import corrections, scheduled
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import service as telemetry
from gridlink.telemetry.schemas import TelemetrySampleIn
from tests.gridlink.fakes import committed_database_url, committed_engine, factory
from tests.gridlink.reports.fleet import add_event, add_node, add_samples

__all__ = ["committed_database_url", "committed_engine", "factory"]

T0 = datetime(2026, 7, 1, tzinfo=UTC)
START = T0 + timedelta(hours=1)
END = START + timedelta(minutes=30)
OUTAGE = (START + timedelta(minutes=5), START + timedelta(minutes=20))
SETTINGS = GridlinkSettings.model_validate(
    {
        "database_url": "sqlite://",
        "report_sample_period_s": 30.0,
        "report_settlement_delay_s": 900.0,
        "report_scheduled_intervals_s": [300, 900],
        "report_correction_debounce_s": 300.0,
    }
)
SETTLED = END + timedelta(seconds=900)
DEBOUNCE = timedelta(seconds=300)


def _wipe(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        session.execute(update(Report).values(previous_id=None))  # versions link to each other
        for model in (Report, AuditEntry, Event, Node):
            session.execute(delete(model))


@pytest.fixture
def reported(factory: sessionmaker[Session]) -> Iterator[tuple[sessionmaker[Session], int]]:
    """One node that went silent for 15 minutes of the event; its reports stored at settlement."""
    _wipe(factory)
    with session_scope(factory) as session:
        node = add_node(session, "n1")
        add_samples(session, node.id, T0, OUTAGE[0], period_s=30.0, power_w=2000.0)
        add_samples(session, node.id, OUTAGE[1], END + timedelta(hours=1), period_s=30.0)
        add_event(session, SETTINGS, START, 1800, limit_kw=50.0, now=T0)
        node_id = node.id
    assert len(scheduled.generate_due(factory, now=SETTLED, settings=SETTINGS)) == 2
    yield factory, node_id
    _wipe(factory)


def _replay(factory: sessionmaker[Session], node_id: int, *, now: datetime) -> None:
    """The node's spool after the outage: its samples, with their ids, stored late."""
    samples = []
    at = OUTAGE[0]
    while at < OUTAGE[1]:
        samples.append(
            TelemetrySampleIn(
                ts=at,
                power_w=1500.0,
                throughput_tok_s=500.0,
                demand_tok_s=500.0,
                sample_id=f"spool:{int(at.timestamp())}",
            )
        )
        at += timedelta(seconds=30)
    with session_scope(factory) as session:
        telemetry.ingest(session, node_id, samples, actor=SYSTEM, now=now, settings=SETTINGS)


def _versions(factory: sessionmaker[Session]) -> list[tuple[str, int, str, int | None, int]]:
    with session_scope(factory) as session:
        rows = session.execute(
            select(Report.subject, Report.version, Report.trigger, Report.previous_id, Report.id)
        )
        return sorted((s, v, t, p, i) for s, v, t, p, i in rows)


def _late_records(factory: sessionmaker[Session]) -> int:
    with session_scope(factory) as session:
        return int(session.scalar(select(func.count()).select_from(TelemetryLateArrival)) or 0)


def test_late_telemetry_corrects_the_reports_after_the_debounce(
    reported: tuple[sessionmaker[Session], int],
) -> None:
    factory, node_id = reported
    first = {s: (i, body_incomplete) for s, i, body_incomplete in _incomplete(factory)}
    assert all(incomplete > 0 for _, incomplete in first.values())
    arrived = SETTLED + timedelta(hours=1)
    _replay(factory, node_id, now=arrived)
    assert _late_records(factory) == 1
    # Within the debounce nothing happens (more of the spool may be on its way).
    assert scheduled.generate_due(factory, now=arrived + DEBOUNCE / 2, settings=SETTINGS) == []
    assert _late_records(factory) == 1
    created = scheduled.generate_due(factory, now=arrived + DEBOUNCE, settings=SETTINGS)
    assert len(created) == 2 and _late_records(factory) == 0
    versions = _versions(factory)
    by_subject = {s: [] for s, *_ in versions}
    for subject, version, trigger, previous, report_id in versions:
        by_subject[subject].append((version, trigger, previous, report_id))
    for chain in by_subject.values():
        (v1, t1, p1, id1), (v2, t2, p2, id2) = chain
        assert (v1, t1, p1) == (1, "scheduled", None)
        assert (v2, t2, p2) == (2, "correction", id1) and id2 in created
    assert all(incomplete == 0 for _, _, incomplete in _incomplete(factory, latest=True))
    # Later checks find nothing more to do.
    assert scheduled.generate_due(factory, now=arrived + 3 * DEBOUNCE, settings=SETTINGS) == []


def _incomplete(
    factory: sessionmaker[Session], *, latest: bool = False
) -> list[tuple[str, int, int]]:
    """``(subject, report id, incomplete event intervals)`` of the first or latest versions."""
    with session_scope(factory) as session:
        reports = list(session.scalars(select(Report).order_by(Report.version)))
        chosen: dict[str, Report] = {}
        for report in reports:
            if latest or report.subject not in chosen:
                chosen[report.subject] = report
        return [(s, r.id, int(r.body["totals"]["incomplete_intervals"])) for s, r in chosen.items()]


def test_a_replay_of_stored_samples_makes_no_new_version(
    reported: tuple[sessionmaker[Session], int],
) -> None:
    factory, node_id = reported
    arrived = SETTLED + timedelta(hours=1)
    _replay(factory, node_id, now=arrived)
    assert len(scheduled.generate_due(factory, now=arrived + DEBOUNCE, settings=SETTINGS)) == 2
    _replay(factory, node_id, now=arrived + 2 * DEBOUNCE)  # the same samples again
    assert _late_records(factory) == 1
    assert scheduled.generate_due(factory, now=arrived + 4 * DEBOUNCE, settings=SETTINGS) == []
    assert _late_records(factory) == 0
    assert max(v for _, v, *_ in _versions(factory)) == 2


def test_late_telemetry_outside_every_report_is_dropped(
    reported: tuple[sessionmaker[Session], int],
) -> None:
    factory, node_id = reported
    sample = TelemetrySampleIn(ts=END + timedelta(minutes=50), power_w=1.0, throughput_tok_s=0.0)
    with session_scope(factory) as session:
        telemetry.ingest(
            session,
            node_id,
            [sample],
            actor=SYSTEM,
            now=SETTLED + timedelta(hours=2),
            settings=SETTINGS,
        )
    assert _late_records(factory) == 1
    assert (
        scheduled.generate_due(factory, now=SETTLED + timedelta(hours=3), settings=SETTINGS) == []
    )
    assert _late_records(factory) == 0 and len(_versions(factory)) == 2


def test_a_check_that_dies_leaves_the_correction_due(
    reported: tuple[sessionmaker[Session], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    factory, node_id = reported
    arrived = SETTLED + timedelta(hours=1)
    _replay(factory, node_id, now=arrived)

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("killed mid-correction")

    with monkeypatch.context() as patched:
        patched.setattr(corrections.service, "store", crash)
        with pytest.raises(RuntimeError):
            corrections.correct_reports(factory, now=arrived + DEBOUNCE, settings=SETTINGS)
    assert _late_records(factory) == 1 and len(_versions(factory)) == 2
    # A new leader (or the next check) does it.
    assert len(corrections.correct_reports(factory, now=arrived + DEBOUNCE, settings=SETTINGS)) == 2
    assert _late_records(factory) == 0
