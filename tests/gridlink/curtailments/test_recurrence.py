"""Recurrence expansion keeps the local wall-clock time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

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


def test_rfc5545_rule_weekly_on_two_days() -> None:
    start = datetime(2026, 7, 6, 15, tzinfo=UTC)  # Monday 17:00 in Paris (CEST, UTC+2)
    rule = Recurrence(rrule="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4", timezone="Europe/Paris")
    got = occurrences(start, rule, limit=10)
    assert [t.strftime("%a %d %H:%M") for t in got] == [
        "Mon 06 15:00",
        "Wed 08 15:00",
        "Mon 13 15:00",
        "Wed 15 15:00",
    ]


def test_rfc5545_rule_keeps_local_time_across_dst_and_accepts_the_prefix() -> None:
    start = datetime(2026, 10, 23, 15, tzinfo=UTC)  # Friday 17:00 in Paris (CEST)
    rule = Recurrence(rrule="RRULE:FREQ=WEEKLY;UNTIL=20261031T000000", timezone="Europe/Paris")
    got = occurrences(start, rule, limit=10)
    # Winter time starts on 25 October: 17:00 local is then 16:00 UTC.
    assert [t.strftime("%d %H:%M") for t in got] == ["23 15:00", "30 16:00"]


def test_rfc5545_monthly_by_weekday_position() -> None:
    start = datetime(2026, 1, 1, 22, tzinfo=UTC)
    rule = Recurrence(rrule="FREQ=MONTHLY;BYDAY=1TH;COUNT=3", timezone="America/Chicago")
    got = occurrences(start, rule, limit=10)  # first Thursday, 16:00 Chicago
    assert [t.date().isoformat() for t in got] == ["2026-01-01", "2026-02-05", "2026-03-05"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rrule": "FREQ=HOURLY;COUNT=3"}, "FREQ must be one of"),
        ({"rrule": "FREQ=DAILY"}, "exactly one of COUNT or UNTIL"),
        ({"rrule": "FREQ=DAILY;COUNT=2;UNTIL=20270101"}, "exactly one of COUNT or UNTIL"),
        ({"rrule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY;COUNT=2"}, "one RRULE value"),
        ({"rrule": "FREQ=DAILY;COUNT=2;BYDAY=XX"}, "not a valid RFC 5545 RRULE"),
        ({"rrule": "FREQ=DAILY;COUNT=2", "freq": "daily"}, "either rrule or freq"),
        ({"count": 2}, "needs freq"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Recurrence(**fields)
