"""Curve helpers: the upper concave hull, interpolation, fitting a profile to a power range."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridlink.core.curves import evaluate, fit_to_range, upper_concave_hull
from gridlink.errors import AllocationError


def test_hull_drops_points_below_the_chord_and_collinear_points() -> None:
    dip = ((100.0, 0.0), (200.0, 10.0), (300.0, 100.0), (400.0, 120.0))
    assert upper_concave_hull(dip) == ((100.0, 0.0), (300.0, 100.0), (400.0, 120.0))
    line = ((0.0, 0.0), (1.0, 1.0), (2.0, 2.0))
    assert upper_concave_hull(line) == ((0.0, 0.0), (2.0, 2.0))


def test_hull_of_a_concave_curve_is_the_curve() -> None:
    concave = ((100.0, 0.0), (200.0, 100.0), (300.0, 150.0))
    assert upper_concave_hull(concave) == concave


def test_evaluate_interpolates_and_is_flat_outside() -> None:
    curve = ((100.0, 0.0), (200.0, 100.0), (300.0, 150.0))
    assert evaluate(curve, 150.0) == 50.0
    assert evaluate(curve, 250.0) == 125.0
    assert evaluate(curve, 200.0) == 100.0
    assert evaluate(curve, 50.0) == 0.0 and evaluate(curve, 999.0) == 150.0


def test_fit_to_range_clips_and_extends() -> None:
    profile = ((200.0, 100.0), (400.0, 300.0), (600.0, 400.0))
    assert fit_to_range(profile, 300.0, 700.0) == (
        (300.0, 200.0),
        (400.0, 300.0),
        (600.0, 400.0),
        (700.0, 400.0),
    )
    assert fit_to_range(profile, 100.0, 300.0) == ((100.0, 100.0), (200.0, 100.0), (300.0, 200.0))


def test_fit_to_range_refuses_bad_input() -> None:
    with pytest.raises(AllocationError, match="at least 2 points"):
        fit_to_range(((1.0, 1.0),), 0.0, 2.0)
    with pytest.raises(AllocationError, match="min_w must be below max_w"):
        fit_to_range(((1.0, 1.0), (2.0, 2.0)), 5.0, 5.0)


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(1, 100), st.integers(0, 100)), min_size=1, max_size=8))
def test_hull_is_concave_above_every_point_and_keeps_the_ends(
    steps: list[tuple[int, int]],
) -> None:
    points = [(0.0, 0.0)]
    for width, gain in steps:
        points.append((points[-1][0] + width, points[-1][1] + gain))
    hull = upper_concave_hull(points)
    assert hull[0] == points[0] and hull[-1] == points[-1]
    assert set(hull) <= set(points)
    slopes = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(hull)]
    assert all(left > right for left, right in itertools.pairwise(slopes))
    assert all(evaluate(hull, p) >= t - 1e-9 for p, t in points)
