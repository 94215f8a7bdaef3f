"""Recurrence expansion keeps the local wall-clock time."""

from __future__ import annotations

from datetime import UTC, date, datetime

from gridlink.curtailments.recurrence import occurrences
from gridlink.curtailments.schemas import Recurrence


def test_no_rule_is_one_occurrence() -> None:
    start = datetime(2026, 3, 1, 17, tzinfo=UTC)
    assert occurrences(start, None, limit=10) == [start]


def test_daily_across_a_dst_change_keeps_local_time() -> None:
    start = datetime(2026, 3, 27, 16, 0, tzinfo=UTC)  # 17:00 in Paris (CET, UTC+1)
    rule = Recurrence(freq="daily", count=3, timezone="Europe/Paris")
    got = occurrences(start, rule, limit=10)
    # Summer time starts on 29 March: 17:00 local is then 15:00 UTC.
    assert [t.strftime("%d %H:%M") for t in got] == ["27 16:00", "28 16:00", "29 15:00"]


def test_weekdays_until_a_date() -> None:
    start = datetime(2026, 7, 3, 12, tzinfo=UTC)  # Friday
    rule = Recurrence(freq="weekdays", until=date(2026, 7, 8))
    got = occurrences(start, rule, limit=10)
    assert [t.date().isoformat() for t in got] == [
        "2026-07-03",
        "2026-07-06",
        "2026-07-07",
        "2026-07-08",
    ]


def test_limit_stops_expansion_one_past() -> None:
    start = datetime(2026, 7, 1, tzinfo=UTC)
    rule = Recurrence(freq="daily", count=1000)
    assert len(occurrences(start, rule, limit=5)) == 6
