"""The measured baseline: a sample-and-hold, time-weighted mean over the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridlink.core.baseline import mean_power_kw
from gridlink.errors import PlanningError

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_readings_hold_until_the_next_one_and_are_weighted_by_time() -> None:
    # 600 kW for 45 min, then 800 kW for 15 min: (600*45 + 800*15) / 60 = 650.
    readings = [(at(45), 800.0), (at(0), 600.0)]
    assert mean_power_kw(readings, window_start=at(0), window_end=at(60)) == 650.0


def test_a_reading_before_the_window_holds_into_it() -> None:
    readings = [(at(-30), 400.0), (at(30), 1000.0)]
    assert mean_power_kw(readings, window_start=at(0), window_end=at(60)) == 700.0


def test_time_before_the_first_reading_is_not_counted() -> None:
    readings = [(at(30), 500.0), (at(45), 700.0)]
    assert mean_power_kw(readings, window_start=at(0), window_end=at(60)) == 600.0


def test_no_reading_in_or_before_the_window_gives_none() -> None:
    assert mean_power_kw([], window_start=at(0), window_end=at(60)) is None
    late = [(at(60), 500.0)]
    assert mean_power_kw(late, window_start=at(0), window_end=at(60)) is None


def test_bad_input_is_refused_naming_the_field() -> None:
    with pytest.raises(PlanningError, match=r"readings\.at"):
        mean_power_kw([(datetime(2026, 7, 1), 1.0)], window_start=at(0), window_end=at(1))
    with pytest.raises(PlanningError, match="power_kw"):
        mean_power_kw([(at(0), -1.0)], window_start=at(0), window_end=at(1))
    with pytest.raises(PlanningError, match="window_end"):
        mean_power_kw([], window_start=at(1), window_end=at(1))
