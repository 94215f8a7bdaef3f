from __future__ import annotations

import pytest

from pals_core.sim import SaturatingWorkload, build_sim_node
from pals_core.sim.physics import solve_clock, wait_energy_j


@pytest.mark.parametrize("variation", [0.0, 0.05])
@pytest.mark.parametrize("caps_w", [(300.0,) * 4, (300.0, 300.0, 250.0, 300.0)])
def test_each_gpus_solve_while_caps_settle_is_its_own_clock_solve(
    caps_w: tuple[float, ...], variation: float
) -> None:
    node = build_sim_node(
        "llama-3.1-70b",
        num_gpus=4,
        workload=SaturatingWorkload(),
        seed=3,
        device_variation_frac=variation,
    )
    node.clock.sleep(5.0)
    for i, cap_w in enumerate(caps_w):
        node.gpus.set_power_limit_w(i, cap_w)
    lockstep = node.engine._gpus
    assert lockstep._uniform == (variation == 0.0)
    coef = node.engine._coef
    now_s = node.clock.now_s()
    checked = 0
    while lockstep.settling(now_s):
        for n_dec, ctx, n_pf in ((64, 64_000, 0), (8, 8000, 512), (0, 0, 4096)):
            fixed_s, mem_s, cmp_s = coef.work(n_dec, ctx, n_pf)
            own = [
                solve_clock(
                    fixed_s,
                    mem_s * g.speed_factor,
                    cmp_s * g.speed_factor,
                    g.power,
                    g.target_w(now_s),
                )
                for g in lockstep.gpus
            ]
            t_step = max(t for _, t, _ in own)
            expected = [
                (f, e + wait_energy_j(f, t_step - t, g.power) if t != t_step else e)
                for g, (f, t, e) in zip(lockstep.gpus, own, strict=True)
            ]
            assert lockstep._solve_each(fixed_s, mem_s, cmp_s, now_s) == (expected, t_step)
            checked += 1
        now_s += 0.05
    assert checked >= 3
