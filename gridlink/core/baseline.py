"""The measured baseline: a time-weighted mean of power readings over a recent window.

``BaselinePolicy(kind="measured", measured_kw=...)`` takes a number; this computes it from
telemetry the caller has loaded. Readings are treated as sample-and-hold: a reading's value holds
until the next reading, so irregular reporting does not over-weight bursts of samples. The
latest reading before the window holds into it; time before the first reading is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from gridlink.core.utc import utc_datetime
from gridlink.errors import PlanningError

__all__ = ["mean_power_kw"]


def mean_power_kw(
    readings: Sequence[tuple[datetime, float]], *, window_start: datetime, window_end: datetime
) -> float | None:
    """Time-weighted mean of ``(at, power_kw)`` readings over ``[window_start, window_end)``.

    Returns None when no reading covers any part of the window (no baseline can be measured).
    """
    window_start = utc_datetime(window_start, "window_start")
    window_end = utc_datetime(window_end, "window_end")
    if window_end <= window_start:
        raise PlanningError(
            f"window_end must be after window_start, got {window_start} .. {window_end}"
        )
    points = []
    for at, power_kw in readings:
        value = float(power_kw)
        if not math.isfinite(value) or value < 0:
            raise PlanningError(f"readings: power_kw must be a finite number >= 0, got {power_kw}")
        points.append((utc_datetime(at, "readings.at"), value))
    points.sort()
    # The reading in force at window_start, then every reading inside the window.
    before = [p for p in points if p[0] <= window_start]
    inside = [p for p in points if window_start < p[0] < window_end]
    steps = ([(window_start, before[-1][1])] if before else []) + inside
    if not steps:
        return None
    energy = 0.0
    for (start, value), (end, _) in zip(steps, [*steps[1:], (window_end, 0.0)], strict=True):
        energy += value * (end - start).total_seconds()
    covered_s = (window_end - steps[0][0]).total_seconds()
    return energy / covered_s
