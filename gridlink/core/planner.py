"""Budget planner: compose overlapping demand-response events into one facility limit trajectory.

Rules (the docs page ``docs/gateway-core.md`` shows a worked example):

* Each interval asks for a facility limit. ``limit_kw`` is that limit; ``reduction_kw`` resolves
  to ``baseline_kw - value`` and ``reduction_pct`` to ``baseline_kw * (1 - value / 100)``. The
  baseline is a fixed figure or a measured average computed by the caller (``BaselinePolicy``);
  it is only required when a reduction interval overlaps the window.
* Every requested limit is clamped to ``[0, facility_max_kw]``. An event with several intervals
  active at one instant asks for the lowest of them.
* At each instant the lowest limit among the active events wins; with no active event the limit
  is ``facility_max_kw``. The GPU budget is ``max(0, limit - overhead_kw)``.
* ``binding_event_id`` is the event whose (clamped) limit won. When several events give the same
  limit, the one with the higher ``priority`` number binds; on equal priority, the lower
  ``event_id`` (the older event). ``contributing_event_ids`` lists every active event, sorted.
  Both are ``None`` / empty only when no event is active.
* Segments are half-open ``[start, end)``, contiguous, cover ``[window_start, window_end)`` and
  adjacent segments with the same (limit, contributors, binding) are merged.

All datetimes must be timezone-aware UTC. The output depends only on the set of events and
intervals, never on their order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from numbers import Integral, Real
from typing import Literal

from gridlink.core.utc import utc_datetime
from gridlink.errors import PlanningError

IntervalKind = Literal["limit_kw", "reduction_kw", "reduction_pct"]
BaselineKind = Literal["fixed", "measured"]

INTERVAL_KINDS: tuple[str, ...] = ("limit_kw", "reduction_kw", "reduction_pct")
BASELINE_KINDS: tuple[str, ...] = ("fixed", "measured")

__all__ = [
    "BaselinePolicy",
    "PlannerEvent",
    "PlannerInterval",
    "Segment",
    "plan_facility_budget",
]


def _finite(value: object, field: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise PlanningError(f"{field} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise PlanningError(f"{field} must be a finite number >= {minimum:g}, got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class PlannerInterval:
    """One requested limit over ``[start, end)``; validated on construction."""

    start: datetime
    end: datetime
    kind: IntervalKind
    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc_datetime(self.start, "interval.start"))
        object.__setattr__(self, "end", utc_datetime(self.end, "interval.end"))
        if self.end <= self.start:
            raise PlanningError(
                f"interval.end must be after interval.start, got {self.start} .. {self.end}"
            )
        kind = str(self.kind)
        if kind not in INTERVAL_KINDS:
            raise PlanningError(f"interval.kind must be one of {INTERVAL_KINDS}, got {kind!r}")
        object.__setattr__(self, "kind", kind)
        value = _finite(self.value, "interval.value")
        if kind == "reduction_pct" and value > 100.0:
            raise PlanningError(f"interval.value for reduction_pct must be <= 100, got {value}")
        object.__setattr__(self, "value", value)


@dataclass(frozen=True, slots=True)
class PlannerEvent:
    """An event: its identity, its priority (higher number = more important) and its intervals."""

    event_id: int
    priority: int
    intervals: Sequence[PlannerInterval]

    def __post_init__(self) -> None:
        if isinstance(self.event_id, bool) or not isinstance(self.event_id, Integral):
            raise PlanningError(f"event.event_id must be an int, got {self.event_id!r}")
        if isinstance(self.priority, bool) or not isinstance(self.priority, Integral):
            raise PlanningError(
                f"event.priority must be an int (event {self.event_id}), got {self.priority!r}"
            )
        object.__setattr__(self, "event_id", int(self.event_id))
        object.__setattr__(self, "priority", int(self.priority))
        intervals = tuple(self.intervals)
        for interval in intervals:
            if not isinstance(interval, PlannerInterval):
                raise PlanningError(
                    f"event.intervals must hold PlannerInterval (event {self.event_id}), "
                    f"got {type(interval).__name__}"
                )
        object.__setattr__(self, "intervals", intervals)


@dataclass(frozen=True, slots=True)
class BaselinePolicy:
    """Where reductions are measured from: a fixed kW figure, or a measured average in kW.

    The measured average is computed by the caller over its recent window (telemetry is I/O);
    the planner only needs the number. A missing number is an error only when a reduction
    interval overlaps the planning window.
    """

    kind: BaselineKind
    fixed_kw: float | None = None
    measured_kw: float | None = None

    def __post_init__(self) -> None:
        kind = str(self.kind)
        if kind not in BASELINE_KINDS:
            raise PlanningError(f"baseline.kind must be one of {BASELINE_KINDS}, got {kind!r}")
        object.__setattr__(self, "kind", kind)
        for name in ("fixed_kw", "measured_kw"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _finite(value, f"baseline.{name}"))

    def resolve_kw(self) -> float:
        """The baseline in kW; raises when the chosen kind has no value."""
        value = self.fixed_kw if self.kind == "fixed" else self.measured_kw
        if value is None:
            raise PlanningError(
                f"baseline.{self.kind}_kw is required: a reduction interval overlaps the window "
                f"and the baseline kind is {self.kind!r}"
            )
        return value


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of the trajectory over ``[start, end)`` with a constant limit."""

    start: datetime
    end: datetime
    facility_limit_kw: float
    gpu_budget_kw: float
    contributing_event_ids: tuple[int, ...]
    binding_event_id: int | None


@dataclass(frozen=True, slots=True)
class _Request:
    """An interval clipped to the window with its limit resolved and clamped."""

    start: datetime
    end: datetime
    event_id: int
    limit_kw: float


def _resolve_limit_kw(
    interval: PlannerInterval, baseline: BaselinePolicy, facility_max_kw: float
) -> float:
    if interval.kind == "limit_kw":
        limit = interval.value
    elif interval.kind == "reduction_kw":
        limit = baseline.resolve_kw() - interval.value
    else:
        limit = baseline.resolve_kw() * (1.0 - interval.value / 100.0)
    return min(max(limit, 0.0), facility_max_kw)


def _clipped_requests(
    events: Sequence[PlannerEvent],
    window_start: datetime,
    window_end: datetime,
    baseline: BaselinePolicy,
    facility_max_kw: float,
) -> list[_Request]:
    requests = []
    for event in events:
        for interval in event.intervals:
            start = max(interval.start, window_start)
            end = min(interval.end, window_end)
            if start >= end:
                continue
            limit = _resolve_limit_kw(interval, baseline, facility_max_kw)
            requests.append(_Request(start, end, event.event_id, limit))
    # Sorting on every field makes the sweep below independent of the input order.
    requests.sort(key=lambda r: (r.start, r.end, r.event_id, r.limit_kw))
    return requests


def plan_facility_budget(
    events: Sequence[PlannerEvent],
    *,
    window_start: datetime,
    window_end: datetime,
    baseline: BaselinePolicy,
    facility_max_kw: float,
    overhead_kw: float,
) -> list[Segment]:
    """The facility limit and GPU budget over ``[window_start, window_end)``, as segments."""
    window_start = utc_datetime(window_start, "window_start")
    window_end = utc_datetime(window_end, "window_end")
    if window_end <= window_start:
        raise PlanningError(
            f"window_end must be after window_start, got {window_start} .. {window_end}"
        )
    facility_max_kw = _finite(facility_max_kw, "facility_max_kw")
    overhead_kw = _finite(overhead_kw, "overhead_kw")
    if not isinstance(baseline, BaselinePolicy):
        raise PlanningError(f"baseline must be a BaselinePolicy, got {type(baseline).__name__}")
    priorities: dict[int, int] = {}
    for event in events:
        if not isinstance(event, PlannerEvent):
            raise PlanningError(f"events must hold PlannerEvent, got {type(event).__name__}")
        if event.event_id in priorities:
            raise PlanningError(f"events: duplicate event_id {event.event_id}")
        priorities[event.event_id] = event.priority

    requests = _clipped_requests(events, window_start, window_end, baseline, facility_max_kw)
    boundaries = sorted(
        {window_start, window_end} | {t for r in requests for t in (r.start, r.end)}
    )

    segments: list[Segment] = []
    active: list[_Request] = []
    next_request = 0
    for seg_start, seg_end in pairwise(boundaries):
        active = [r for r in active if r.end > seg_start]
        while next_request < len(requests) and requests[next_request].start <= seg_start:
            active.append(requests[next_request])
            next_request += 1
        limit_by_event: dict[int, float] = {}
        for request in active:
            current = limit_by_event.get(request.event_id, math.inf)
            limit_by_event[request.event_id] = min(current, request.limit_kw)
        if limit_by_event:
            binding = min(limit_by_event, key=lambda e: (limit_by_event[e], -priorities[e], e))
            limit_kw = limit_by_event[binding]
            binding_id: int | None = binding
        else:
            limit_kw, binding_id = facility_max_kw, None
        contributors = tuple(sorted(limit_by_event))
        previous = segments[-1] if segments else None
        if (
            previous is not None
            and previous.facility_limit_kw == limit_kw
            and previous.contributing_event_ids == contributors
            and previous.binding_event_id == binding_id
        ):
            segments[-1] = Segment(
                previous.start, seg_end, limit_kw, previous.gpu_budget_kw, contributors, binding_id
            )
        else:
            gpu_budget_kw = max(0.0, limit_kw - overhead_kw)
            segments.append(
                Segment(seg_start, seg_end, limit_kw, gpu_budget_kw, contributors, binding_id)
            )
    return segments
