"""The report check in a child process: due reports are generated there (the parent's own
``generate_due`` is never called), nothing due costs no child, and an in-memory database or
``report_isolation = "inline"`` keeps everything in the gateway's process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
from gridlink.models.report import Report
from gridlink.reports import worker
from gridlink.settings import GridlinkSettings
from tests.gridlink.fakes import committed_database_url, committed_engine, factory
from tests.gridlink.reports.fleet import add_event, add_node, add_samples, wipe

__all__ = ["committed_database_url", "committed_engine", "factory"]

T0 = datetime(2026, 7, 1, tzinfo=UTC)
START = T0 + timedelta(hours=1)
END = START + timedelta(minutes=30)
SETTINGS = GridlinkSettings.model_validate(
    {
        "database_url": "sqlite://",  # not what the child opens: it gets the factory's URL
        "report_sample_period_s": 30.0,
        "report_settlement_delay_s": 900.0,
        "report_scheduled_intervals_s": [300, 900],
    }
)
SETTLED = END + timedelta(seconds=900)


@pytest.fixture
def fleet(factory: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    wipe(factory)
    with session_scope(factory) as session:
        node = add_node(session, "n1")
        add_samples(session, node.id, T0, END + timedelta(hours=1), period_s=30.0)
        add_event(session, SETTINGS, START, 1800, limit_kw=50.0, now=T0)
    yield factory
    wipe(factory)


def _fail(*_args: Any, **_kwargs: Any) -> list[int]:
    raise AssertionError("must not run in the gateway's process")


def _stored(factory: sessionmaker[Session]) -> list[int]:
    with session_scope(factory) as session:
        return sorted(session.scalars(select(Report.id)))


def test_due_reports_are_generated_in_a_child(
    fleet: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the child is a fresh interpreter: this patch is not in it, so the reports below can only
    # come from there
    monkeypatch.setattr(worker, "generate_due", _fail)
    assert worker.heavy_work_due(fleet, now=SETTLED, settings=SETTINGS)
    created = worker.check_reports(fleet, now=SETTLED, settings=SETTINGS)
    assert len(created) == 2
    assert sorted(created) == _stored(fleet)
    assert not worker.heavy_work_due(fleet, now=SETTLED, settings=SETTINGS)


def test_nothing_due_runs_in_process_without_a_child(
    fleet: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "generate_due_in_child", _fail)
    before = SETTLED - timedelta(seconds=1)
    assert not worker.heavy_work_due(fleet, now=before, settings=SETTINGS)
    assert worker.check_reports(fleet, now=before, settings=SETTINGS) == []


def test_inline_never_starts_a_child(
    fleet: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "generate_due_in_child", _fail)
    inline = SETTINGS.model_copy(update={"report_isolation": "inline"})
    assert len(worker.check_reports(fleet, now=SETTLED, settings=inline)) == 2


def test_in_memory_sqlite_is_not_shared(tmp_path: Any) -> None:
    memory = build_engine("sqlite://")
    on_disk = build_engine(f"sqlite:///{tmp_path}/gridlink.db")
    try:
        assert worker.shared_url(build_sessionmaker(memory)) is None
        assert worker.shared_url(build_sessionmaker(on_disk)) == f"sqlite:///{tmp_path}/gridlink.db"
    finally:
        memory.dispose()
        on_disk.dispose()


def test_a_failing_child_raises_here_and_leaves_the_reports_due(
    fleet: sessionmaker[Session],
) -> None:
    with pytest.raises(OperationalError, match='"gridlink_no_such_database" does not exist'):
        worker.generate_due_in_child(
            "postgresql+psycopg://postgres@127.0.0.1:5432/gridlink_no_such_database",
            SETTINGS,
            now=SETTLED,
        )
    assert worker.heavy_work_due(fleet, now=SETTLED, settings=SETTINGS)
