"""The budget planner: example rules with hand-computed answers, then properties."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridlink.core.planner import (
    BaselinePolicy,
    PlannerEvent,
    PlannerInterval,
    Segment,
    plan_facility_budget,
)
from gridlink.errors import GridlinkError, PlanningError

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
FIXED_900 = BaselinePolicy(kind="fixed", fixed_kw=900.0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def interval(start_min: float, end_min: float, kind: str, value: float) -> PlannerInterval:
    return PlannerInterval(at(start_min), at(end_min), kind, value)  # type: ignore[arg-type]


def plan(
    events: list[PlannerEvent],
    *,
    start_min: float = 0,
    end_min: float = 240,
    baseline: BaselinePolicy = FIXED_900,
    facility_max_kw: float = 1000.0,
    overhead_kw: float = 100.0,
) -> list[Segment]:
    return plan_facility_budget(
        events,
        window_start=at(start_min),
        window_end=at(end_min),
        baseline=baseline,
        facility_max_kw=facility_max_kw,
        overhead_kw=overhead_kw,
    )


def summary(
    segments: list[Segment],
) -> list[tuple[float, float, float, tuple[int, ...], int | None]]:
    """(start min, end min, limit, contributors, binding) per segment, for readable asserts."""
    return [
        (
            (s.start - T0) / timedelta(minutes=1),
            (s.end - T0) / timedelta(minutes=1),
            s.facility_limit_kw,
            s.contributing_event_ids,
            s.binding_event_id,
        )
        for s in segments
    ]


# --- examples -------------------------------------------------------------------------------


def test_no_event_gives_facility_max_over_the_whole_window() -> None:
    [segment] = plan([])
    assert (segment.start, segment.end) == (at(0), at(240))
    assert segment.facility_limit_kw == 1000.0
    assert segment.gpu_budget_kw == 900.0
    assert segment.contributing_event_ids == ()
    assert segment.binding_event_id is None


def test_overlapping_events_lowest_limit_wins_and_every_active_event_contributes() -> None:
    a = PlannerEvent(1, 0, [interval(60, 180, "limit_kw", 800)])
    b = PlannerEvent(2, 0, [interval(120, 200, "limit_kw", 600)])
    assert summary(plan([a, b])) == [
        (0, 60, 1000.0, (), None),
        (60, 120, 800.0, (1,), 1),
        (120, 180, 600.0, (1, 2), 2),
        (180, 200, 600.0, (2,), 2),
        (200, 240, 1000.0, (), None),
    ]


def test_reduction_kw_and_pct_resolve_against_the_baseline() -> None:
    kw = PlannerEvent(1, 0, [interval(0, 60, "reduction_kw", 200)])
    pct = PlannerEvent(2, 0, [interval(60, 120, "reduction_pct", 25)])
    measured = BaselinePolicy(kind="measured", measured_kw=800.0)
    segments = plan([kw, pct], end_min=120, baseline=measured)
    assert summary(segments) == [(0, 60, 600.0, (1,), 1), (60, 120, 600.0, (2,), 2)]
    fixed = plan([kw, pct], end_min=120, baseline=FIXED_900)
    assert [s.facility_limit_kw for s in fixed] == [700.0, 675.0]


def test_limits_are_clamped_to_zero_and_facility_max_and_gpu_budget_floors_at_zero() -> None:
    above = PlannerEvent(1, 0, [interval(0, 60, "limit_kw", 5000)])
    below = PlannerEvent(2, 0, [interval(60, 120, "reduction_kw", 2000)])  # 900 - 2000 < 0
    small = PlannerEvent(3, 0, [interval(120, 180, "limit_kw", 40)])  # below the 100 kW overhead
    segments = plan([above, below, small], end_min=180)
    assert [(s.facility_limit_kw, s.gpu_budget_kw) for s in segments] == [
        (1000.0, 900.0),
        (0.0, 0.0),
        (40.0, 0.0),
    ]
    assert segments[0].binding_event_id == 1  # an active event binds even at the facility max


def test_equal_limits_bind_the_higher_priority_then_the_lower_event_id() -> None:
    low = PlannerEvent(7, 1, [interval(0, 60, "limit_kw", 500)])
    high = PlannerEvent(9, 5, [interval(0, 60, "reduction_kw", 400)])  # 900 - 400 = 500
    [segment] = plan([low, high], end_min=60)
    assert (segment.facility_limit_kw, segment.binding_event_id) == (500.0, 9)
    same_priority = PlannerEvent(3, 1, [interval(0, 60, "limit_kw", 500)])
    [segment] = plan([low, same_priority], end_min=60)
    assert (segment.contributing_event_ids, segment.binding_event_id) == ((3, 7), 3)


def test_a_lower_limit_binds_whatever_the_priorities() -> None:
    important = PlannerEvent(1, 100, [interval(0, 60, "limit_kw", 700)])
    minor = PlannerEvent(2, 0, [interval(0, 60, "limit_kw", 650)])
    [segment] = plan([important, minor], end_min=60)
    assert (segment.facility_limit_kw, segment.binding_event_id) == (650.0, 2)


def test_adjacent_identical_segments_merge_and_different_ones_do_not() -> None:
    same = PlannerEvent(
        1, 0, [interval(0, 30, "limit_kw", 500), interval(30, 60, "reduction_kw", 400)]
    )
    assert summary(plan([same], end_min=60)) == [(0, 60, 500.0, (1,), 1)]
    steps = PlannerEvent(
        1, 0, [interval(0, 30, "limit_kw", 500), interval(30, 60, "limit_kw", 450)]
    )
    assert summary(plan([steps], end_min=60)) == [(0, 30, 500.0, (1,), 1), (30, 60, 450.0, (1,), 1)]


def test_a_segment_keeps_its_limit_but_splits_when_the_binding_event_changes() -> None:
    first = PlannerEvent(1, 0, [interval(0, 30, "limit_kw", 500)])
    second = PlannerEvent(2, 0, [interval(30, 60, "limit_kw", 500)])
    assert summary(plan([first, second], end_min=60)) == [
        (0, 30, 500.0, (1,), 1),
        (30, 60, 500.0, (2,), 2),
    ]


def test_intervals_are_clipped_to_the_window_and_outside_ones_are_ignored() -> None:
    straddles = PlannerEvent(1, 0, [interval(-60, 30, "limit_kw", 500)])
    outside = PlannerEvent(2, 0, [interval(300, 400, "reduction_pct", 50)])
    no_baseline = BaselinePolicy(kind="measured")  # not needed: the reduction is outside
    segments = plan([straddles, outside], end_min=60, baseline=no_baseline)
    assert summary(segments) == [(0, 30, 500.0, (1,), 1), (30, 60, 1000.0, (), None)]


def test_overlapping_intervals_of_one_event_ask_for_the_lower_limit() -> None:
    event = PlannerEvent(
        1, 0, [interval(0, 60, "limit_kw", 700), interval(20, 40, "limit_kw", 300)]
    )
    assert summary(plan([event], end_min=60)) == [
        (0, 20, 700.0, (1,), 1),
        (20, 40, 300.0, (1,), 1),
        (40, 60, 700.0, (1,), 1),
    ]


def test_outputs_are_tagged_utc_even_for_other_zero_offset_timezones() -> None:
    zero = timezone(timedelta(0), "Z")
    start = datetime(2026, 7, 1, 12, 0, tzinfo=zero)
    event = PlannerEvent(1, 0, [PlannerInterval(start, start + timedelta(hours=1), "limit_kw", 1)])
    segments = plan_facility_budget(
        [event],
        window_start=start,
        window_end=start + timedelta(hours=2),
        baseline=FIXED_900,
        facility_max_kw=10.0,
        overhead_kw=0.0,
    )
    assert all(s.start.tzinfo is UTC and s.end.tzinfo is UTC for s in segments)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: PlannerInterval(datetime(2026, 1, 1), at(10), "limit_kw", 1), "interval.start"),
        (
            lambda: PlannerInterval(
                at(0), at(10).astimezone(timezone(timedelta(hours=2))), "limit_kw", 1
            ),
            "interval.end",
        ),
        (lambda: interval(10, 10, "limit_kw", 1), "interval.end must be after"),
        (lambda: interval(10, 5, "limit_kw", 1), "interval.end must be after"),
        (lambda: interval(0, 10, "cap_kw", 1), "interval.kind"),
        (lambda: interval(0, 10, "limit_kw", -1), "interval.value"),
        (lambda: interval(0, 10, "limit_kw", float("nan")), "interval.value"),
        (lambda: interval(0, 10, "reduction_pct", 120), "reduction_pct"),
        (lambda: PlannerEvent(1, 0, [object()]), "event.intervals"),  # type: ignore[list-item]
        (lambda: PlannerEvent(1, "high", []), "event.priority"),  # type: ignore[arg-type]
        (lambda: BaselinePolicy(kind="median"), "baseline.kind"),  # type: ignore[arg-type]
        (lambda: BaselinePolicy(kind="fixed", fixed_kw=-5), "baseline.fixed_kw"),
        (lambda: plan([], start_min=10, end_min=10), "window_end"),
        (lambda: plan([], facility_max_kw=-1), "facility_max_kw"),
        (lambda: plan([], overhead_kw=float("inf")), "overhead_kw"),
        (
            lambda: plan_facility_budget(
                [],
                window_start=datetime(2026, 1, 1),
                window_end=at(1),
                baseline=FIXED_900,
                facility_max_kw=1,
                overhead_kw=0,
            ),
            "window_start",
        ),
        (
            lambda: plan([PlannerEvent(1, 0, []), PlannerEvent(1, 2, [])]),
            "duplicate event_id 1",
        ),
        (
            lambda: plan(
                [PlannerEvent(1, 0, [interval(0, 10, "reduction_kw", 5)])],
                baseline=BaselinePolicy(kind="measured"),
            ),
            "baseline.measured_kw",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(PlanningError, match=field.replace(".", r"\.")) as info:
        build()  # type: ignore[operator]
    assert isinstance(info.value, GridlinkError) and isinstance(info.value, ValueError)


# --- properties -----------------------------------------------------------------------------

WINDOW_MIN = 120
KIND_VALUES = {
    "limit_kw": st.integers(0, 1500),
    "reduction_kw": st.integers(0, 1200),
    "reduction_pct": st.integers(0, 100),
}


@st.composite
def intervals_st(draw: st.DrawFn) -> PlannerInterval:
    start = draw(st.integers(-30, WINDOW_MIN + 20))
    length = draw(st.integers(1, 90))
    kind = draw(st.sampled_from(sorted(KIND_VALUES)))
    value = draw(KIND_VALUES[kind])
    return interval(start, start + length, kind, value)


@st.composite
def events_st(draw: st.DrawFn) -> list[PlannerEvent]:
    ids = draw(st.lists(st.integers(1, 50), unique=True, max_size=6))
    return [
        PlannerEvent(event_id, draw(st.integers(0, 3)), draw(st.lists(intervals_st(), max_size=3)))
        for event_id in ids
    ]


def reference_at(
    events: list[PlannerEvent], instant: datetime, baseline_kw: float, facility_max_kw: float
) -> tuple[float, tuple[int, ...], int | None]:
    """Brute force: (limit, contributors, binding) at one instant, straight from the rules."""
    asks: dict[int, float] = {}
    for event in events:
        for iv in event.intervals:
            if iv.start <= instant < iv.end:
                raw = {
                    "limit_kw": iv.value,
                    "reduction_kw": baseline_kw - iv.value,
                    "reduction_pct": baseline_kw * (1 - iv.value / 100),
                }[iv.kind]
                limit = min(max(raw, 0.0), facility_max_kw)
                asks[event.event_id] = min(asks.get(event.event_id, limit), limit)
    if not asks:
        return facility_max_kw, (), None
    priority = {e.event_id: e.priority for e in events}
    binding = min(asks, key=lambda e: (asks[e], -priority[e], e))
    return asks[binding], tuple(sorted(asks)), binding


@settings(max_examples=150, deadline=None)
@given(
    events=events_st(),
    baseline_kw=st.integers(0, 1200),
    facility_max_kw=st.integers(0, 1200),
    overhead_kw=st.integers(0, 300),
    probes=st.lists(st.integers(0, WINDOW_MIN * 60 - 1), max_size=8),  # seconds
    seed=st.integers(0, 2**16),
)
def test_plan_properties(
    events: list[PlannerEvent],
    baseline_kw: int,
    facility_max_kw: int,
    overhead_kw: int,
    probes: list[int],
    seed: int,
) -> None:
    baseline = BaselinePolicy(kind="fixed", fixed_kw=baseline_kw)
    segments = plan(
        events,
        end_min=WINDOW_MIN,
        baseline=baseline,
        facility_max_kw=facility_max_kw,
        overhead_kw=overhead_kw,
    )
    # Contiguous, ordered, covering the window.
    assert segments[0].start == at(0) and segments[-1].end == at(WINDOW_MIN)
    for left, right in itertools.pairwise(segments):
        assert left.end == right.start
    for segment in segments:
        assert segment.start < segment.end
        assert 0 <= segment.facility_limit_kw <= facility_max_kw
        assert segment.gpu_budget_kw == max(0.0, segment.facility_limit_kw - overhead_kw)
    # Merged: neighbours differ in (limit, contributors, binding).
    for left, right in itertools.pairwise(segments):
        key = ("facility_limit_kw", "contributing_event_ids", "binding_event_id")
        assert [getattr(left, k) for k in key] != [getattr(right, k) for k in key]
    # Equal to the brute-force rule at segment starts, midpoints and random instants.
    instants = [s.start for s in segments] + [s.start + (s.end - s.start) / 2 for s in segments]
    instants += [T0 + timedelta(seconds=seconds) for seconds in probes]
    for instant in instants:
        [segment] = [s for s in segments if s.start <= instant < s.end]
        expected = reference_at(events, instant, baseline_kw, facility_max_kw)
        got = (
            segment.facility_limit_kw,
            segment.contributing_event_ids,
            segment.binding_event_id,
        )
        assert got == expected
    # Order independence: shuffled events and intervals give the same trajectory.
    rng = random.Random(seed)
    shuffled = [
        PlannerEvent(e.event_id, e.priority, rng.sample(list(e.intervals), len(e.intervals)))
        for e in rng.sample(events, len(events))
    ]
    again = plan(
        shuffled,
        end_min=WINDOW_MIN,
        baseline=baseline,
        facility_max_kw=facility_max_kw,
        overhead_kw=overhead_kw,
    )
    assert again == segments


def test_docs_worked_example() -> None:
    """The planner table in docs/gateway-core.md (window 12:00-16:00 is minutes 0-240)."""
    events = [
        PlannerEvent(1, 0, [interval(60, 180, "limit_kw", 800)]),
        PlannerEvent(2, 5, [interval(120, 200, "reduction_kw", 300)]),
        PlannerEvent(3, 2, [interval(180, 200, "limit_kw", 600)]),
    ]
    segments = plan(events)
    assert summary(segments) == [
        (0, 60, 1000.0, (), None),
        (60, 120, 800.0, (1,), 1),
        (120, 180, 600.0, (1, 2), 2),
        (180, 200, 600.0, (2, 3), 2),
        (200, 240, 1000.0, (), None),
    ]
    assert [s.gpu_budget_kw for s in segments] == [900.0, 700.0, 500.0, 500.0, 900.0]
