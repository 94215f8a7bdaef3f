from __future__ import annotations

import numpy as np
import pytest

from pals_core.model import PerformanceModel, PlanRequest, plan_operating_point
from pals_core.model.planner import _allowed_grid
from tests.pals_core.model.synthetic import synthetic_profile

SLO_S = 0.09


@pytest.fixture(scope="module")
def model() -> PerformanceModel:
    return PerformanceModel.fit(synthetic_profile())


def request(load: float, max_cap: float = 700.0, **kw: float) -> PlanRequest:
    return PlanRequest(
        load_tok_s=load, max_cap_w=max_cap, min_cap_w=200.0, itl_p99_slo_s=SLO_S, **kw
    )  # type: ignore[arg-type]


def test_plan_is_the_least_power_cap_that_serves_the_load(model: PerformanceModel) -> None:
    plan = plan_operating_point(model.table, request(4000.0))
    assert plan.feasible and plan.itl_ok
    assert plan.predicted_capacity_tok_s >= 4000.0 * 1.12
    assert model.predict(plan.cap_w, plan.batch_limit).throughput_tok_s >= 4000.0 * 1.12 * 0.99
    assert model.predict(plan.cap_w, plan.operating_batch * 1.15).itl_p99_s <= SLO_S * 1.01
    # brute force over the table: no cap that serves the load within the SLO uses less power
    t = model.table
    best = np.inf
    for i, cap in enumerate(t.caps_w):
        if t.throughput_tok_s[i, -1] < 4000.0 * 1.12:
            continue
        n = float(np.interp(4000.0, t.throughput_tok_s[i], t.batches))
        if model.predict(cap, n * 1.15).itl_p99_s > SLO_S:
            continue
        best = min(best, model.predict(cap, n).power_w)
    assert plan.predicted_power_w <= best * 1.01


def test_more_load_needs_more_power(model: PerformanceModel) -> None:
    powers = [
        plan_operating_point(model.table, request(x)).predicted_power_w
        for x in (1000.0, 2500.0, 4000.0, 5500.0)
    ]
    assert powers == sorted(powers)


def test_budget_bounds_the_cap_and_infeasible_load_maximises_capacity(
    model: PerformanceModel,
) -> None:
    plan = plan_operating_point(model.table, request(7000.0, max_cap=420.0))
    assert not plan.feasible and plan.cap_w == pytest.approx(420.0)
    capacities = [model.predict(420.0, b).throughput_tok_s for b in range(8, 257)]
    assert plan.predicted_capacity_tok_s >= 0.99 * max(capacities)


def test_corrections_shift_the_plan(model: PerformanceModel) -> None:
    base = plan_operating_point(model.table, request(5000.0))
    slower = plan_operating_point(model.table, request(5000.0, throughput_scale=0.88))
    assert slower.cap_w > base.cap_w


@pytest.mark.parametrize("max_batch", [1, 7, 8, 100, 128, 255, 256, 1024])
def test_the_allowed_grid_keeps_exactly_the_batches_within_the_limit(
    model: PerformanceModel, max_batch: int
) -> None:
    t = model.table
    req = request(5000.0, 550.0, max_batch=max_batch, throughput_scale=0.93, power_scale=1.07)
    grid = _allowed_grid(t, req)
    keep = t.batches <= max_batch  # the columns, as a mask over the table's batches
    rows = slice(*np.searchsorted(t.caps_w, [req.min_cap_w - 1e-9, req.max_cap_w + 1e-9]))
    assert np.array_equal(grid.batches, t.batches[keep])
    assert grid.last == int(keep.sum()) - 1
    assert np.array_equal(grid.thr, t.throughput_tok_s[rows][:, keep] * 0.93)
    power = np.minimum(t.power_w[rows][:, keep] * 1.07, t.caps_w[rows][:, None] * t.num_gpus)
    rr, cc = np.indices(power.shape)
    assert np.array_equal(grid.power(rr, cc), power)
    assert grid.power(len(power) - 1, grid.last) == power[-1, -1]
    assert np.array_equal(grid.itl, t.itl_p99_s[rows][:, keep])
