"""Cross-validated error of the performance model: how well it predicts points it has not seen.

Leave-one-out by default (each point is predicted by a model fitted on all the others): with a
sparse sweep of ~30 points it costs 30 small fits. Points on the edge of the sweep are then
extrapolated, so the maximum error is pessimistic compared with interpolation inside the range;
the median is the figure to read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pals_core.errors import ConfigurationError
from pals_core.model.performance import PerformanceModel
from pals_core.model.profile import Profile

CV_QUANTITIES = ("throughput_tok_s", "power_w", "itl_p50_s", "itl_p99_s")


@dataclass(frozen=True, slots=True)
class QuantityError:
    quantity: str
    median_rel_error: float
    max_rel_error: float
    n: int


@dataclass(frozen=True, slots=True)
class CrossValidation:
    folds: int
    errors: tuple[QuantityError, ...]

    def for_quantity(self, quantity: str) -> QuantityError:
        for err in self.errors:
            if err.quantity == quantity:
                return err
        raise KeyError(quantity)


def cross_validate(profile: Profile, *, folds: int | None = None, seed: int = 0) -> CrossValidation:
    """Relative prediction errors on held-out points (``folds=None``: leave-one-out)."""
    points = list(profile.points)
    n = len(points)
    k = n if folds is None else folds
    if not 2 <= k <= n:
        raise ConfigurationError(f"folds must be within [2, {n}] (number of points), got {k}")
    order = np.random.default_rng(seed).permutation(n) if folds is not None else np.arange(n)
    groups = [order[i::k] for i in range(k)]
    rel: dict[str, list[float]] = {q: [] for q in CV_QUANTITIES}
    for held in groups:
        held_set = set(int(i) for i in held)
        train = Profile(
            profile.metadata, tuple(p for i, p in enumerate(points) if i not in held_set)
        )
        model = PerformanceModel.fit(train)
        for i in held_set:
            point = points[i]
            pred = model.predict(point.cap_w, point.batch)
            for q in CV_QUANTITIES:
                actual = getattr(point, q)
                if actual > 0 and np.isfinite(actual):
                    rel[q].append(abs(getattr(pred, q) - actual) / actual)
    errors = tuple(
        QuantityError(q, float(np.median(v)), float(np.max(v)), len(v)) for q, v in rel.items() if v
    )
    return CrossValidation(k, errors)
