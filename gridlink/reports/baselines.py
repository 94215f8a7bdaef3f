"""The four audit baselines: what the facility would have drawn had there been no event.

Pure functions over plain numbers (kW per settlement interval); no ORM, no clock, no I/O. The
planner's reduction baseline (:mod:`gridlink.core.baseline`) is a different thing: one number the
budget is cut from before the event; these judge afterwards what the event actually delivered.

1. **Contracted** (:func:`contracted_kw`): a fixed figure from the demand-response contract.
2. **Pre-event average** (:func:`pre_event_average_kw`): the mean facility power over a window
   just before the event, held flat through it.
3. **High X of Y** (:func:`high_x_of_y`): the X highest-load of the Y most recent comparable days
   (same day type, no event, complete data), averaged interval by interval at the same local time
   of day, scaled by a capped same-day adjustment.
4. **Model counterfactual** (:func:`stock_power_w`): each node's power at its stock configuration
   (maximum caps, default batch limit) serving the demand it reported, from its profile.

docs/reports.md gives each one's definition, when to use it and a worked example.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from gridlink.errors import InvalidInputError

__all__ = [
    "ComparableDay",
    "HighXOfY",
    "contracted_kw",
    "high_x_of_y",
    "pre_event_average_kw",
    "stock_power_w",
    "validate_stock_curve",
]


def contracted_kw(interval_count: int, contracted: float) -> list[float]:
    """The contracted baseline, the same figure in every interval."""
    if not math.isfinite(contracted) or contracted < 0:
        raise InvalidInputError("contracted_kw", f"must be a finite number >= 0, got {contracted}")
    return [float(contracted)] * interval_count


def pre_event_average_kw(interval_kw: Sequence[float | None]) -> float | None:
    """Mean of the pre-event intervals that were measured; None when none was."""
    measured = [v for v in interval_kw if v is not None]
    if not measured:
        return None
    return sum(measured) / len(measured)


@dataclass(frozen=True, slots=True)
class ComparableDay:
    """One past day seen at the event's local time of day.

    ``interval_kw`` holds the facility power of each event interval on that day (None where not
    measured); ``adjustment_kw`` the mean over that day's adjustment window.
    """

    day: date
    interval_kw: tuple[float | None, ...]
    adjustment_kw: float | None
    had_event: bool = False
    same_day_type: bool = True


@dataclass(frozen=True, slots=True)
class HighXOfY:
    """The high-X-of-Y baseline and how it was reached."""

    interval_kw: tuple[float | None, ...]
    considered: tuple[date, ...]
    selected: tuple[date, ...]
    adjustment_factor: float | None
    adjustment_capped: bool
    note: str


def _complete(day: ComparableDay, intervals: int) -> bool:
    return len(day.interval_kw) == intervals and all(v is not None for v in day.interval_kw)


def high_x_of_y(
    days: Sequence[ComparableDay],
    *,
    intervals: int,
    x: int,
    y: int,
    event_day_adjustment_kw: float | None,
    adjustment_cap: float,
) -> HighXOfY:
    """Average the X highest of the Y most recent eligible days, then adjust.

    Eligible: same day type, no event in force that day, every interval measured. Days are
    ranked by their mean load over the event intervals (ties: the more recent first). The
    same-day adjustment is ``event-day load / selected days' load`` over the adjustment window,
    clipped to ``[1 - cap, 1 + cap]``; without data for it the factor is 1 and the note says so.
    """
    if not 1 <= x <= y:
        raise InvalidInputError("high_x_of_y", f"need 1 <= x <= y, got x={x}, y={y}")
    if not 0 <= adjustment_cap < 1:
        raise InvalidInputError("adjustment_cap", f"must be in [0, 1), got {adjustment_cap}")
    newest_first = sorted(days, key=lambda d: d.day, reverse=True)
    eligible = [
        d for d in newest_first if d.same_day_type and not d.had_event and _complete(d, intervals)
    ][:y]
    considered = tuple(d.day for d in eligible)
    if len(eligible) < x:
        note = f"only {len(eligible)} eligible comparable day(s), {x} needed: no baseline"
        return HighXOfY((None,) * intervals, considered, (), None, False, note)

    def mean_load(d: ComparableDay) -> float:
        return sum(v for v in d.interval_kw if v is not None) / intervals

    ranked = sorted(eligible, key=lambda d: (-mean_load(d), -d.day.toordinal()))
    chosen = ranked[:x]
    raw = [sum(d.interval_kw[i] or 0.0 for d in chosen) / x for i in range(intervals)]
    adjustments = [d.adjustment_kw for d in chosen]
    if event_day_adjustment_kw is None or any(a is None for a in adjustments):
        factor, capped = 1.0, False
        note = "same-day adjustment not applied: adjustment window not fully measured"
    else:
        reference = sum(a or 0.0 for a in adjustments) / x
        unclipped = event_day_adjustment_kw / reference if reference > 0 else 1.0
        factor = min(max(unclipped, 1.0 - adjustment_cap), 1.0 + adjustment_cap)
        capped = factor != unclipped
        note = f"same-day adjustment x{factor:.4f}" + (" (capped)" if capped else "")
    values = tuple(v * factor for v in raw)
    selected = tuple(sorted(d.day for d in chosen))
    return HighXOfY(values, considered, selected, factor, capped, note)


def validate_stock_curve(
    points: Sequence[Sequence[float]], field: str
) -> tuple[tuple[float, float], ...]:
    """A stock curve: ``[[throughput_tok_s, power_w], ...]``, at least 2 points, throughput
    strictly increasing, power finite and >= 0."""
    curve = tuple((float(p[0]), float(p[1])) for p in points)
    if len(curve) < 2:
        raise InvalidInputError(field, f"needs at least 2 points, got {len(curve)}")
    for i, (tok_s, power_w) in enumerate(curve):
        if not (math.isfinite(tok_s) and math.isfinite(power_w)) or tok_s < 0 or power_w < 0:
            raise InvalidInputError(f"{field}.{i}", "throughput and power must be finite and >= 0")
        if i and tok_s <= curve[i - 1][0]:
            raise InvalidInputError(f"{field}.{i}", "throughput_tok_s must increase strictly")
    return curve


def stock_power_w(curve: Sequence[tuple[float, float]], demand_tok_s: float) -> float:
    """Power at the stock configuration serving ``demand_tok_s``: linear interpolation on the
    curve; flat beyond its ends (below the first point the node idles at least that much; above
    the last it is saturated and cannot draw more)."""
    loads = [t for t, _ in curve]
    if demand_tok_s <= loads[0]:
        return curve[0][1]
    if demand_tok_s >= loads[-1]:
        return curve[-1][1]
    i = bisect.bisect_right(loads, demand_tok_s)
    (t0, p0), (t1, p1) = curve[i - 1], curve[i]
    return p0 + (p1 - p0) * (demand_tok_s - t0) / (t1 - t0)
