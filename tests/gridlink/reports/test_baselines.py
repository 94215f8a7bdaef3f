"""The audit baselines as pure functions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from gridlink.errors import InvalidInputError
from gridlink.reports.baselines import (
    ComparableDay,
    contracted_kw,
    high_x_of_y,
    pre_event_average_kw,
    stock_power_w,
    validate_stock_curve,
)

DAY = date(2026, 7, 1)


def _day(back: int, level: float, adj: float | None = None, **kw: object) -> ComparableDay:
    return ComparableDay(DAY - timedelta(days=back), (level, level), adj, **kw)  # type: ignore[arg-type]


def test_contracted_and_pre_event() -> None:
    assert contracted_kw(3, 50.0) == [50.0, 50.0, 50.0]
    with pytest.raises(InvalidInputError, match="contracted_kw"):
        contracted_kw(1, float("nan"))
    assert pre_event_average_kw([10.0, None, 20.0]) == 15.0
    assert pre_event_average_kw([None, None]) is None


def test_high_x_of_y_picks_the_highest_of_the_most_recent_eligible_days() -> None:
    days = [
        _day(1, 99.0, 10.0, had_event=True),  # an event day: never comparable
        _day(2, 99.0, 10.0, same_day_type=False),  # a weekend day for a weekday event
        _day(3, 10.0, 10.0),
        _day(4, 14.0, 10.0),
        _day(5, 12.0, 10.0),
        _day(6, 50.0, 10.0),  # beyond Y = 3 eligible days
        ComparableDay(DAY - timedelta(days=7), (20.0, None), 10.0),  # incomplete
    ]
    result = high_x_of_y(
        days, intervals=2, x=2, y=3, event_day_adjustment_kw=11.0, adjustment_cap=0.2
    )
    assert result.considered == (
        DAY - timedelta(days=3),
        DAY - timedelta(days=4),
        DAY - timedelta(days=5),
    )
    assert result.selected == (DAY - timedelta(days=5), DAY - timedelta(days=4))
    assert result.adjustment_factor == pytest.approx(1.1)
    assert result.interval_kw == pytest.approx((14.3, 14.3))  # (14 + 12) / 2 x 1.1


def test_the_same_day_adjustment_is_capped_and_skipped_without_data() -> None:
    days = [_day(1, 10.0, 10.0), _day(2, 10.0, 10.0)]
    capped = high_x_of_y(
        days, intervals=2, x=2, y=2, event_day_adjustment_kw=20.0, adjustment_cap=0.2
    )
    assert capped.adjustment_factor == pytest.approx(1.2) and capped.adjustment_capped
    assert capped.interval_kw == pytest.approx((12.0, 12.0))
    low = high_x_of_y(days, intervals=2, x=2, y=2, event_day_adjustment_kw=1.0, adjustment_cap=0.2)
    assert low.adjustment_factor == pytest.approx(0.8) and low.adjustment_capped
    none = high_x_of_y(
        days, intervals=2, x=2, y=2, event_day_adjustment_kw=None, adjustment_cap=0.2
    )
    assert none.adjustment_factor == 1.0 and "not applied" in none.note


def test_too_few_days_give_no_baseline_and_bad_parameters_are_refused() -> None:
    result = high_x_of_y(
        [_day(1, 10.0, 10.0)],
        intervals=2,
        x=2,
        y=3,
        event_day_adjustment_kw=10.0,
        adjustment_cap=0.2,
    )
    assert result.interval_kw == (None, None) and result.note.startswith("only 1 eligible")
    with pytest.raises(InvalidInputError, match="x <= y"):
        high_x_of_y([], intervals=1, x=4, y=3, event_day_adjustment_kw=None, adjustment_cap=0.2)
    with pytest.raises(InvalidInputError, match="adjustment_cap"):
        high_x_of_y([], intervals=1, x=1, y=3, event_day_adjustment_kw=None, adjustment_cap=1.5)


def test_stock_power_interpolates_and_stays_flat_beyond_the_curve() -> None:
    curve = validate_stock_curve([[100.0, 1000.0], [1100.0, 5000.0]], "stock_curve")
    assert stock_power_w(curve, 600.0) == 3000.0
    assert stock_power_w(curve, 0.0) == 1000.0
    assert stock_power_w(curve, 5000.0) == 5000.0
    with pytest.raises(InvalidInputError, match=r"stock_curve\.1"):
        validate_stock_curve([[100.0, 1.0], [100.0, 2.0]], "stock_curve")
    with pytest.raises(InvalidInputError, match="at least 2"):
        validate_stock_curve([[100.0, 1.0]], "stock_curve")
