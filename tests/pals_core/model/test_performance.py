from __future__ import annotations

import math

import numpy as np
import pytest

from pals_core.errors import ProfileError
from pals_core.model import PerformanceModel, Profile, cross_validate
from pals_core.model.performance import Prediction
from tests.pals_core.model.synthetic import saturated, synthetic_profile


def test_model_interpolates_between_profiled_points() -> None:
    model = PerformanceModel.fit(synthetic_profile())
    errors = []
    for cap in (325.0, 450.0, 575.0, 650.0):
        for batch in (12, 24, 48, 96, 192):
            truth, pred = saturated(cap, batch), model.predict(cap, batch)
            errors.append(abs(pred.throughput_tok_s / truth.throughput_tok_s - 1))
            errors.append(abs(pred.power_w / truth.power_w - 1))
    assert np.median(errors) < 0.02 and max(errors) < 0.06


def test_model_is_monotone_where_physics_says_so() -> None:
    t = PerformanceModel.fit(synthetic_profile()).table
    assert np.all(np.diff(t.throughput_tok_s, axis=0) >= 0)
    assert np.all(np.diff(t.throughput_tok_s, axis=1) >= 0)
    assert np.all(np.diff(t.power_w, axis=0) >= 0) and np.all(np.diff(t.power_w, axis=1) >= 0)
    assert np.all(np.diff(t.itl_p99_s, axis=0) <= 0) and np.all(np.diff(t.itl_p99_s, axis=1) >= 0)


def test_below_the_smallest_batch_throughput_scales_with_batch() -> None:
    model = PerformanceModel.fit(synthetic_profile())
    assert model.predict(500.0, 4).throughput_tok_s == pytest.approx(
        model.predict(500.0, 8).throughput_tok_s / 2, rel=0.02
    )


def test_leave_one_out_error_is_small_on_a_sparse_sweep() -> None:
    cv = cross_validate(synthetic_profile())
    assert cv.folds == 30
    for quantity in ("throughput_tok_s", "power_w", "itl_p99_s"):
        err = cv.for_quantity(quantity)
        assert err.n == 30 and err.median_rel_error < 0.03


def test_k_fold_cross_validation() -> None:
    cv = cross_validate(synthetic_profile(), folds=5)
    assert cv.folds == 5 and cv.for_quantity("power_w").median_rel_error < 0.05


def test_too_sparse_a_profile_is_refused() -> None:
    profile = synthetic_profile()
    sparse = Profile(profile.metadata, profile.points[:5])
    with pytest.raises(ProfileError, match="needs >= 6 valid points"):
        PerformanceModel.fit(sparse)


def _numpy_predict(model: PerformanceModel, cap_w: float, batch: float) -> Prediction:
    """The bilinear interpolation on the numpy table, as :meth:`PerformanceModel.predict` did it
    before its plain-Python path: the reference the fast path must equal bit for bit."""
    t = model.table
    c = min(max(cap_w, model.min_cap_w), model.max_cap_w)
    b = min(max(batch, 1.0), float(t.batches[-1]))
    i = int(np.clip(np.searchsorted(t.caps_w, c) - 1, 0, len(t.caps_w) - 2))
    j = int(np.clip(np.searchsorted(t.batches, b) - 1, 0, len(t.batches) - 2))
    wc = (c - t.caps_w[i]) / (t.caps_w[i + 1] - t.caps_w[i])
    wb = (math.log(b) - math.log(t.batches[j])) / (
        math.log(t.batches[j + 1]) - math.log(t.batches[j])
    )

    def interp(a: np.ndarray) -> float:
        top = a[i, j] * (1 - wb) + a[i, j + 1] * wb
        bottom = a[i + 1, j] * (1 - wb) + a[i + 1, j + 1] * wb
        return float(top * (1 - wc) + bottom * wc)

    return Prediction(
        throughput_tok_s=interp(t.throughput_tok_s),
        power_w=interp(t.power_w),
        itl_p50_s=interp(t.itl_p50_s),
        itl_p99_s=interp(t.itl_p99_s),
    )


def test_predict_equals_the_numpy_interpolation_bit_for_bit() -> None:
    model = PerformanceModel.fit(synthetic_profile())
    rng = np.random.default_rng(11)
    caps = [*rng.uniform(100.0, 800.0, 400), *model.table.caps_w[::7]]
    batches = [*np.exp(rng.uniform(-1.0, 6.5, 400)), *model.table.batches[::5]]
    cases = [(float(c), float(b)) for c, b in zip(caps, batches, strict=False)]
    # Grid points, both ends, out of range on each side, and integer batches (as callers pass).
    cases += [(model.min_cap_w, 1.0), (model.max_cap_w, model.max_batch), (50.0, 0.2)]
    cases += [(900.0, 5000.0), (333.0, 7), (450.0, model.max_batch), (model.min_cap_w, 256)]
    for cap_w, batch in cases:
        assert model.predict(cap_w, batch) == _numpy_predict(model, cap_w, batch), (cap_w, batch)
