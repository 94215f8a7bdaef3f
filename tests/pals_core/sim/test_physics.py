from __future__ import annotations

import random

import pytest

from pals_core.sim import PHYSICS_VARIANTS, build_sim_node
from pals_core.sim import fitted_constants as fc
from pals_core.sim.physics import (
    _BISECT_ITERATIONS,
    PowerCoefficients,
    dynamic_energy_j,
    solve_clock,
    step_time_s,
)


def _reference_solve_clock(
    fixed_s: float, mem_s: float, cmp_s: float, pc: PowerCoefficients, cap_w: float
) -> tuple[float, float, float]:
    """The clock solve through the model's own functions (no written-out arithmetic, the step
    time and energy of the chosen clock computed afresh): what :func:`solve_clock` must give,
    bit for bit."""
    budget_w = cap_w - pc.idle_w
    t1 = fixed_s + mem_s + cmp_s
    e1 = pc.busy_w * t1 + pc.mem_w * mem_s + pc.comp_w * cmp_s
    if e1 <= budget_w * t1:
        return 1.0, t1, e1
    lo = pc.min_clock_frac
    t_lo = step_time_s(lo, fixed_s, mem_s, cmp_s, pc.dvfs)
    e_lo = dynamic_energy_j(lo, mem_s, cmp_s, pc, fixed_s)
    if e_lo > budget_w * t_lo:
        return (lo, t_lo, e_lo) if budget_w <= 0 else (lo, e_lo / budget_w, e_lo)
    hi = 1.0
    for _ in range(_BISECT_ITERATIONS):
        f = 0.5 * (lo + hi)
        t = step_time_s(f, fixed_s, mem_s, cmp_s, pc.dvfs)
        if dynamic_energy_j(f, mem_s, cmp_s, pc, fixed_s) <= budget_w * t:
            lo = f
        else:
            hi = f
    return (
        lo,
        step_time_s(lo, fixed_s, mem_s, cmp_s, pc.dvfs),
        dynamic_energy_j(lo, mem_s, cmp_s, pc, fixed_s),
    )


@pytest.mark.parametrize("physics", PHYSICS_VARIANTS)
@pytest.mark.parametrize(("model", "gpu", "n"), sorted(fc.DEPLOYMENTS))
def test_solve_clock_equals_the_reference_bit_for_bit(
    model: str, gpu: str, n: int, physics: str
) -> None:
    node = build_sim_node(model, gpu, n, physics=physics)
    sim = node.gpus[0]
    pc, spec = sim.power, sim.spec
    coef = node.engine._coef
    rng = random.Random(f"{model}/{gpu}/{n}/{physics}")
    bisected = 0
    for _ in range(300):
        n_dec = rng.choice((0, 1, 8, 64, 256))
        ctx = n_dec * rng.randint(100, 4000)
        n_pf = rng.choice((0, 0, 16, 512, 8192))
        if n_dec == 0 and n_pf == 0:
            n_pf = 1
        fixed_s, mem_s, cmp_s = coef.work(n_dec, ctx, n_pf)
        # from below the idle draw (a stalled step) to above the maximum cap (full clock)
        cap_w = rng.uniform(0.5 * spec.idle_w, 1.1 * spec.max_cap_w)
        got = solve_clock(fixed_s, mem_s, cmp_s, pc, cap_w)
        assert got == _reference_solve_clock(fixed_s, mem_s, cmp_s, pc, cap_w)
        bisected += pc.min_clock_frac < got[0] < 1.0
    assert bisected > 30  # the bisection itself was exercised, not only the two ends
