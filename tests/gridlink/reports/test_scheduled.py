"""Scheduled reports: due after the event's end plus the settlement delay, generated once per
subject, caught up after downtime, and left for the next leader when a run dies uncommitted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.db.engine import session_scope
from gridlink.models.report import Report
from gridlink.reports import scheduled
from gridlink.settings import GridlinkSettings
from tests.gridlink.fakes import committed_database_url, committed_engine, factory
from tests.gridlink.reports.fleet import add_event, add_node, add_samples, cancel_event, wipe

__all__ = ["committed_database_url", "committed_engine", "factory"]

T0 = datetime(2026, 7, 1, tzinfo=UTC)
START = T0 + timedelta(hours=1)
END = START + timedelta(minutes=30)


@pytest.fixture
def fleet(factory: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    wipe(factory)
    with session_scope(factory) as session:
        node = add_node(session, "n1")
        add_samples(session, node.id, T0, END + timedelta(hours=1), period_s=30.0)
    yield factory
    wipe(factory)


def _settings(settings_kw: dict[str, object] | None = None) -> GridlinkSettings:
    values: dict[str, object] = {
        "database_url": "sqlite://",
        "report_sample_period_s": 30.0,
        "report_settlement_delay_s": 900.0,
        "report_scheduled_intervals_s": [300, 900],
        **(settings_kw or {}),
    }
    return GridlinkSettings.model_validate(values)


def _subjects(factory: sessionmaker[Session]) -> list[tuple[str, int, str]]:
    with session_scope(factory) as session:
        rows = session.execute(select(Report.subject, Report.version, Report.trigger))
        return sorted((s, v, t) for s, v, t in rows)


def test_due_after_the_settlement_delay_and_generated_once(
    fleet: sessionmaker[Session],
) -> None:
    settings = _settings()
    with session_scope(fleet) as session:
        add_event(session, settings, START, 1800, limit_kw=50.0, now=T0)
    delay = timedelta(seconds=settings.report_settlement_delay_s)
    assert (
        scheduled.generate_due(fleet, now=END + delay - timedelta(seconds=1), settings=settings)
        == []
    )
    created = scheduled.generate_due(fleet, now=END + delay, settings=settings)
    assert len(created) == 2
    subjects = _subjects(fleet)
    assert [(v, t) for _, v, t in subjects] == [(1, "scheduled"), (1, "scheduled")]
    assert {s.rsplit("@", 1)[1] for s, _, _ in subjects} == {"300", "900"}
    # A later check, or a new leader after a restart, finds nothing due.
    assert scheduled.generate_due(fleet, now=END + 2 * delay, settings=settings) == []
    assert len(_subjects(fleet)) == 2


def test_missed_while_down_is_caught_up_within_the_catchup(
    fleet: sessionmaker[Session],
) -> None:
    settings = _settings({"report_catchup_days": 2.0})
    with session_scope(fleet) as session:
        add_event(session, settings, START, 1800, limit_kw=50.0, now=T0)
        late = add_event(session, settings, START, 1800, reduction_kw=1.0, now=T0)
        cancel_event(session, late, now=T0)  # cancelled before it began: no report
    assert len(scheduled.generate_due(fleet, now=END + timedelta(days=1), settings=settings)) == 2
    _wipe_reports(fleet)
    assert scheduled.generate_due(fleet, now=END + timedelta(days=3), settings=settings) == []


def _wipe_reports(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        session.execute(delete(Report))


def test_a_run_that_dies_before_committing_leaves_the_report_due(
    fleet: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings({"report_scheduled_intervals_s": [900]})
    with session_scope(fleet) as session:
        add_event(session, settings, START, 1800, limit_kw=50.0, now=T0)
    now = END + timedelta(hours=1)

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("killed mid-generation")

    with monkeypatch.context() as patched:
        patched.setattr(scheduled.service, "store", crash)
        with pytest.raises(RuntimeError):
            scheduled.generate_due(fleet, now=now, settings=settings)
    assert _subjects(fleet) == []
    assert len(scheduled.generate_due(fleet, now=now, settings=settings)) == 1
