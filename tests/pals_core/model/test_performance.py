from __future__ import annotations

import numpy as np
import pytest

from pals_core.errors import ProfileError
from pals_core.model import PerformanceModel, Profile, cross_validate
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
