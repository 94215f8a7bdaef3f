from __future__ import annotations

import math

import pytest

from pals_core.engine import Histogram


def test_quantile_interpolates_within_buckets() -> None:
    h = Histogram((0.01, 0.02, 0.04), (10, 30, 40), 40, 0.8)
    assert h.quantile(0.25) == pytest.approx(0.01)  # rank 10 -> top of first bucket
    assert h.quantile(0.5) == pytest.approx(0.015)  # rank 20 -> halfway through the second
    assert h.quantile(1.0) == pytest.approx(0.04)
    assert h.mean_s == pytest.approx(0.02)


def test_minus_gives_the_window_between_snapshots() -> None:
    earlier = Histogram((0.01, 0.02), (5, 5), 5, 0.04)
    later = Histogram((0.01, 0.02), (5, 15), 15, 0.2)
    window = later.minus(earlier)
    assert window.bucket_counts == (0, 10) and window.count == 10
    assert window.quantile(0.5) == pytest.approx(0.015)


def test_empty_histogram_quantile_is_nan_and_bad_q_is_refused() -> None:
    h = Histogram.empty((0.1, 1.0))
    assert math.isnan(h.quantile(0.5))
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        h.quantile(1.5)
