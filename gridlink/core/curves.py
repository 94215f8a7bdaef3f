"""Power-to-throughput curves: the upper concave hull, evaluation and fitting to a power range.

A curve is a tuple of ``(power_w, throughput_tok_s)`` points with strictly increasing power.
The allocator works on the curve's upper concave hull: a measured curve with a dip (noise, or a
batch-size regime change) is replaced by the chords over the dip, which is what an allocator that
trades watts by marginal throughput can actually achieve by time-sharing the two ends. These
scalar helpers are for callers and tests; the allocator has its own vectorised version.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from gridlink.errors import AllocationError

Curve = tuple[tuple[float, float], ...]

__all__ = ["Curve", "evaluate", "fit_to_range", "upper_concave_hull"]


def upper_concave_hull(points: Sequence[tuple[float, float]]) -> Curve:
    """The upper concave hull of points sorted by strictly increasing power (monotone chain).

    Collinear interior points are dropped; the first and last points are always kept.
    """
    hull: list[tuple[float, float]] = []
    for point in points:
        px, py = float(point[0]), float(point[1])
        while len(hull) >= 2:
            (ax, ay), (bx, by) = hull[-2], hull[-1]
            # b is on or below the chord a -> p: it is not a hull vertex.
            if (by - ay) * (px - ax) <= (py - ay) * (bx - ax):
                hull.pop()
            else:
                break
        hull.append((px, py))
    return tuple(hull)


def evaluate(curve: Sequence[tuple[float, float]], power_w: float) -> float:
    """Throughput at ``power_w`` by linear interpolation; flat outside the curve's range."""
    powers = [p for p, _ in curve]
    if power_w <= powers[0]:
        return float(curve[0][1])
    if power_w >= powers[-1]:
        return float(curve[-1][1])
    i = bisect.bisect_right(powers, power_w)
    (x0, y0), (x1, y1) = curve[i - 1], curve[i]
    return y0 + (y1 - y0) * (power_w - x0) / (x1 - x0)


def fit_to_range(curve: Sequence[tuple[float, float]], min_w: float, max_w: float) -> Curve:
    """Clip or extend a curve so it starts at ``min_w`` and ends at ``max_w``.

    Points inside the range are kept, the ends are interpolated; beyond the measured range the
    curve is flat (more power buys no throughput we know of). Use it to match a profile measured
    over other caps to a node's ``[min_w, max_w]`` before building a ``NodeSpec``.
    """
    if len(curve) < 2:
        raise AllocationError(f"curve must have at least 2 points, got {len(curve)}")
    if not min_w < max_w:
        raise AllocationError(f"min_w must be below max_w, got {min_w} and {max_w}")
    inner = [(float(p), float(t)) for p, t in curve if min_w < p < max_w]
    return ((min_w, evaluate(curve, min_w)), *inner, (max_w, evaluate(curve, max_w)))
