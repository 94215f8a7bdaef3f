"""The comparable days' cached facility intervals: the figures computing them again gives, and
forgotten by the database when their telemetry changes (a late sample, pruning)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gridlink.models.report import ReportHistoryInterval
from gridlink.models.telemetry import TelemetryMinute
from gridlink.reports import history, repository
from tests.gridlink.reports.fleet import add_node, add_samples

DAY = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def _cached(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ReportHistoryInterval)) or 0)


def _kw(session: Session, *, cached: bool) -> list[float | None]:
    return repository.facility_kw(
        session, start=DAY, interval_s=900, count=8, overhead_kw=10.0, cached=cached
    )


def test_cached_history_is_what_computing_gives_and_follows_late_telemetry(
    db_session: Session,
) -> None:
    node = add_node(db_session, "n1")
    add_samples(db_session, node.id, DAY, DAY + timedelta(hours=1), power_w=3000.0)
    computed = _kw(db_session, cached=False)
    assert computed == [13.0] * 4 + [None] * 4 and _cached(db_session) == 0
    assert _kw(db_session, cached=True) == computed and _cached(db_session) == 8
    assert _kw(db_session, cached=True) == computed  # read back from the cache
    # A late sample in the second hour: the intervals it may fall in are forgotten...
    add_samples(
        db_session, node.id, DAY + timedelta(minutes=70), DAY + timedelta(minutes=71), power_w=1.0
    )
    assert _cached(db_session) == 8 - 4
    # ... so the next read computes them again and sees it.
    assert _kw(db_session, cached=True) == [13.0] * 4 + [10.001, None, None, None]
    assert _kw(db_session, cached=True) == _kw(db_session, cached=False)


def test_pruned_telemetry_is_forgotten_too(db_session: Session) -> None:
    node = add_node(db_session, "n1")
    add_samples(db_session, node.id, DAY, DAY + timedelta(hours=2), power_w=3000.0)
    assert _kw(db_session, cached=True) == [13.0] * 8 and _cached(db_session) == 8
    db_session.execute(
        delete(TelemetryMinute).where(TelemetryMinute.minute < DAY + timedelta(hours=1))
    )
    assert _cached(db_session) == 4
    assert _kw(db_session, cached=True) == [None] * 4 + [13.0] * 4


def test_the_scheduler_caches_each_settled_day(db_session: Session, report_settings) -> None:
    cfg = report_settings.model_copy(
        update={"report_scheduled_intervals_s": [300, 900], "report_hxy_search_days": 3}
    )
    node = add_node(db_session, "n1")
    add_samples(db_session, node.id, DAY - timedelta(days=2), DAY + timedelta(hours=1))
    now = DAY + timedelta(hours=1)  # 06-30: its day has not ended, so not settled
    computed = []
    while done := history.fill_settled_days(db_session, now=now, settings=cfg):
        computed.append(done)
    assert sum(computed) == 3 * 2 and max(computed) <= history.MAX_FILLS_PER_CHECK
    assert _cached(db_session) == 3 * (288 + 96)  # 06-27, 06-28, 06-29 at 5 and 15 min
    # A comparable-day window on a cached day is read back, equal to computing it.
    start = DAY - timedelta(days=1, hours=3)
    kw = repository.facility_kw(
        db_session, start=start, interval_s=900, count=12, overhead_kw=10.0, cached=True
    )
    assert _cached(db_session) == 3 * (288 + 96)
    assert kw == repository.facility_kw(
        db_session, start=start, interval_s=900, count=12, overhead_kw=10.0
    )
    assert kw == [13.0] * 12
