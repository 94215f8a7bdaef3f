"""Interval timing: back to back, 'now', until further notice, randomizeStart, event.duration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridlink.openadr.intervals import FOREVER, RawPeriod, TimingError, event_windows
from gridlink.openadr.reports import interval_windows

T = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
NOW = datetime(1, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
WEEK_S = 7 * 86400.0


def windows(event_period, intervals, *, duration=None, received=T, horizon=T + 24 * H):  # type: ignore[no-untyped-def]
    return event_windows(
        event_period,
        intervals,
        event_duration=duration,
        received_at=received,
        horizon_end=horizon,
        seed="ven:ev",
        max_piece_s=WEEK_S,
    )


def test_intervals_run_back_to_back_in_the_given_order_and_ids_are_labels() -> None:
    result = windows(RawPeriod(T, H), [(7, None), (3, None), (5, RawPeriod(None, 2 * H))])
    assert [(w.interval_id, w.start, w.end) for w in result] == [
        (7, T, T + H),
        (3, T + H, T + 2 * H),
        (5, T + 2 * H, T + 4 * H),
    ]


def test_an_interval_with_its_own_start_overrides() -> None:
    result = windows(RawPeriod(T, H), [(0, None), (1, RawPeriod(T + 5 * H, None))])
    assert [(w.start, w.end) for w in result] == [(T, T + H), (T + 5 * H, T + 6 * H)]


def test_0001_01_01_means_when_this_ven_first_received_the_event() -> None:
    received = T + timedelta(minutes=7)
    result = windows(RawPeriod(NOW, H), [(0, None)], received=received)
    assert (result[0].start, result[0].end) == (received, received + H)
    # at interval level with no event period: also 'now'
    result = windows(None, [(0, RawPeriod(NOW, H))], received=received)
    assert result[0].start == received


def test_p9999y_is_until_further_notice_cut_into_week_pieces_to_a_whole_week_horizon() -> None:
    result = windows(RawPeriod(T, FOREVER), [(0, None)], horizon=T + 10 * 24 * H)
    assert result[0].start == T
    assert result[-1].end == T + timedelta(days=14)  # 10 days rounded up to whole weeks
    assert all((w.end - w.start).total_seconds() <= WEEK_S for w in result)
    assert all(a.end == b.start for a, b in pairwise(result))
    # a poll a day later (horizon one day further) gives the same windows
    later = windows(RawPeriod(T, FOREVER), [(0, None)], horizon=T + 11 * 24 * H)
    assert later == result


def test_randomize_start_shifts_every_start_by_one_deterministic_offset() -> None:
    period = RawPeriod(T, H, randomize_start=timedelta(minutes=10))
    first = windows(period, [(0, None), (1, None)])
    again = windows(period, [(0, None), (1, None)])
    assert first == again
    shift = first[0].start - T
    assert abs(shift) <= timedelta(minutes=10)
    assert first[1].start - (T + H) == shift
    other_ven = event_windows(
        period,
        [(0, None)],
        event_duration=None,
        received_at=T,
        horizon_end=T + H,
        seed="other:ev",
        max_piece_s=WEEK_S,
    )
    assert other_ven[0].start != first[0].start


def test_event_duration_repeats_or_cuts_the_intervals() -> None:
    two = [(0, None), (1, None)]
    looped = windows(RawPeriod(T, H), two, duration=6 * H)
    assert [w.interval_id for w in looped] == [0, 1, 0, 1, 0, 1]
    assert looped[-1].end == T + 6 * H
    cut = windows(RawPeriod(T, H), two, duration=timedelta(minutes=90))
    assert [(w.interval_id, w.end) for w in cut] == [(0, T + H), (1, T + timedelta(minutes=90))]


def test_zero_duration_asks_for_nothing_and_no_start_is_an_error() -> None:
    assert windows(RawPeriod(NOW, None), [(0, None)]) == []
    with pytest.raises(TimingError, match="no start"):
        windows(None, [(0, RawPeriod(None, H))])


@given(
    st.lists(st.integers(min_value=1, max_value=180), min_size=1, max_size=12),
    st.integers(min_value=0, max_value=30),
    st.text(min_size=1, max_size=12),
)
def test_back_to_back_windows_are_contiguous_and_shifted_together(
    minutes: list[int], randomize_min: int, seed: str
) -> None:
    period = RawPeriod(T, None, randomize_start=timedelta(minutes=randomize_min))
    intervals = [(i * 7, RawPeriod(None, timedelta(minutes=m))) for i, m in enumerate(minutes)]
    result = event_windows(
        period,
        intervals,
        event_duration=None,
        received_at=T,
        horizon_end=T + 24 * H,
        seed=seed,
        max_piece_s=WEEK_S,
    )
    assert [w.interval_id for w in result] == [i * 7 for i in range(len(minutes))]
    assert [(w.end - w.start) for w in result] == [timedelta(minutes=m) for m in minutes]
    assert all(a.end == b.start for a, b in pairwise(result))
    assert abs(result[0].start - T) <= timedelta(minutes=randomize_min)


def test_report_intervals_join_pieces_but_keep_repetitions_apart() -> None:
    looped = windows(RawPeriod(T, H), [(4, None)], duration=3 * H)
    assert [(i, s, e) for i, s, e in interval_windows(looped)] == [
        (4, T, T + H),
        (4, T + H, T + 2 * H),
        (4, T + 2 * H, T + 3 * H),
    ]
    open_ended = windows(RawPeriod(T, FOREVER), [(9, None)], horizon=T + 10 * 24 * H)
    assert len(open_ended) == 2
    assert interval_windows(open_ended) == [(9, T, T + timedelta(days=14))]
