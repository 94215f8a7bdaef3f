from __future__ import annotations

import random

import pytest

from pals_core.sim import PoissonWorkload, SimClock, build_sim_node, lockstep
from pals_core.sim import fitted_constants as fc
from pals_core.sim.clock_search import FULL_CLOCK, clock_grid, solve_clock_near
from pals_core.sim.physics import PowerCoefficients, solve_clock


def test_the_grid_is_the_bisections_lowest_clock_and_midpoints_ascending() -> None:
    grid = clock_grid(0.25, iterations=3)
    assert grid == (0.25, 0.34375, 0.4375, 0.53125, 0.625, 0.71875, 0.8125, 0.90625)
    assert len(clock_grid(0.17)) == 2**14
    assert all(a < b for a, b in zip(clock_grid(0.17), clock_grid(0.17)[1:], strict=False))


@pytest.mark.parametrize(("model", "gpu", "n"), sorted(fc.DEPLOYMENTS))
def test_solve_clock_near_gives_solve_clocks_bits_from_any_hint(
    model: str, gpu: str, n: int
) -> None:
    node = build_sim_node(model, gpu, n)
    pc, spec = node.gpus[0].power, node.gpus[0].spec
    coef = node.engine._coef
    grid = clock_grid(pc.min_clock_frac)
    rng = random.Random(f"{model}/{gpu}/{n}")
    hint, searched = FULL_CLOCK, 0
    for _ in range(400):
        n_dec = rng.choice((0, 1, 8, 64, 256))
        n_pf = rng.choice((0, 0, 16, 512, 8192)) or (0 if n_dec else 1)
        work = coef.work(n_dec, n_dec * rng.randint(100, 4000), n_pf)
        cap_w = rng.uniform(0.5 * spec.idle_w, 1.1 * spec.max_cap_w)  # stalled to full clock
        start = rng.choice((hint, hint + 3, FULL_CLOCK, 0, -7, rng.randint(0, len(grid) + 9)))
        expected = solve_clock(*work, pc, cap_w)
        got, hint = solve_clock_near(*work, pc, cap_w, start)
        assert got == expected
        if hint != FULL_CLOCK:
            assert grid[hint] == got[0]
            searched += 1
        else:  # full clock, or a step stalled at the lowest clock (no grid point's figures)
            assert got[0] in (1.0, pc.min_clock_frac)
    assert searched > 100


def _run_fleet(seed: int) -> list[object]:
    """Three nodes (1, 2, 4 GPUs, varied devices) on one clock, caps cut and moved (settling)
    while they serve Poisson traffic: every figure a controller or a report could read."""
    clock = SimClock()
    nodes = [
        build_sim_node(
            model,
            "H100-SXM",
            gpus,
            workload=PoissonWorkload(rate),
            seed=seed + i,
            device_variation_frac=0.03,
            noise_frac=0.02,
            clock=clock,
        )
        for i, (model, gpus, rate) in enumerate(
            (("llama-3.1-8b", 1, 20.0), ("qwen3-30b-a3b", 2, 15.0), ("llama-3.1-70b", 4, 6.0))
        )
    ]
    rng = random.Random(seed)
    seen: list[object] = []
    for tick in range(300):
        clock.advance_to(clock.now_s() + 0.1)
        for node in nodes:
            if tick % 7 == 3:
                for i, gpu in enumerate(node.gpus):
                    c = gpu.power_limit_constraints()
                    node.gpus.set_power_limit_w(i, rng.uniform(c.min_w, 0.8 * c.max_w))
            seen.append(node.engine.metrics())
            seen.append(node.engine.stats())
            seen.append(
                [(g.get_power_w(), g.get_energy_j(), g.exact_energy_j()) for g in node.gpus]
            )
    return seen


def test_a_simulation_with_hinted_solves_is_the_plain_one_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hinted = _run_fleet(seed=5)
    bisected = 0

    def plain(
        fixed_s: float, mem_s: float, cmp_s: float, pc: PowerCoefficients, cap_w: float, _h: int
    ) -> tuple[tuple[float, float, float], int]:
        nonlocal bisected
        solved = solve_clock(fixed_s, mem_s, cmp_s, pc, cap_w)
        bisected += pc.min_clock_frac < solved[0] < 1.0
        return solved, FULL_CLOCK

    monkeypatch.setattr(lockstep, "solve_clock_near", plain)
    assert _run_fleet(seed=5) == hinted
    assert bisected > 1000  # the caps bound: most steps were solved under them
