"""Physical sanity of the fitted constants and the DVFS model, for every deployment and variant.

* no fitted constant sits at a bound of its fit unless ``AT_BOUND_REASONS`` says why;
* the KV cache never exceeds the memory left after weights and activations;
* the clock-independent draw (idle + memory subsystem) is below each GPU's minimum cap, and the
  minimum cap is reachable by lowering the clock alone (no stalls) for the heaviest steps;
* power rises with the clock; deep caps cost the pessimistic variant more than the nominal one.
"""

from __future__ import annotations

import math

import pytest

from pals_core.sim import PHYSICS_VARIANTS, build_sim_node, gpu_spec, model_profile
from pals_core.sim import fitted_constants as fc
from pals_core.sim.dvfs import dvfs_params
from pals_core.sim.fit import AT_BOUND_REASONS, BOUNDS, free_names
from pals_core.sim.fit_dvfs import A100_IDLE_BOUNDS_W, DVFS_BOUNDS
from pals_core.sim.memory import physical_kv_capacity_tokens
from pals_core.sim.physics import dynamic_energy_j, solve_clock, step_time_s

DEPLOYMENTS = sorted(fc.DEPLOYMENTS)
HEAVY_STEPS = {"prefill 8192": (0, 0, 8192), "decode 256 x 2000": (256, 512_000, 0)}


def _at_bound(value: float, lo: float, hi: float) -> bool:
    return any(abs(math.log(value / b)) < 0.005 for b in (lo, hi))


def test_no_fitted_constant_at_a_bound_without_a_reason() -> None:
    unexplained = []
    for model, gpu, n in DEPLOYMENTS:
        fit = model_profile(model).deployment(gpu, n)
        for name in free_names(n, model_profile(model).is_moe):
            lo, hi = BOUNDS[name]
            value = getattr(fit, name)
            if name == "static_w":
                lo = gpu_spec(gpu).idle_w
            if _at_bound(value, lo, hi) and (f"{model}/{gpu}x{n}", name) not in AT_BOUND_REASONS:
                unexplained.append(f"{model}/{gpu}x{n} {name}={value:g} (bounds {lo:g}, {hi:g})")
    for (physics, gpu), values in fc.DVFS.items():
        for name, value in zip(("v_floor", "f_v", "f_knee"), values, strict=True):
            reasoned = (f"{physics} {gpu}", name) in AT_BOUND_REASONS
            if _at_bound(value, *DVFS_BOUNDS[name]) and not reasoned:
                unexplained.append(f"{physics} {gpu} {name}={value:g}")
    if _at_bound(fc.A100_IDLE_W, *A100_IDLE_BOUNDS_W):
        assert ("A100-SXM", "idle_w") in AT_BOUND_REASONS
    assert not unexplained, "\n".join(unexplained)
    assert all(len(reason) > 40 for reason in AT_BOUND_REASONS.values())


@pytest.mark.parametrize(("model", "gpu", "n"), DEPLOYMENTS)
def test_kv_capacity_fits_in_memory_left_after_weights_and_activations(
    model: str, gpu: str, n: int
) -> None:
    profile = model_profile(model)
    fit = profile.deployment(gpu, n)
    assert fit.kv_capacity_tokens <= physical_kv_capacity_tokens(profile, gpu_spec(gpu), n)


@pytest.mark.parametrize("physics", PHYSICS_VARIANTS)
@pytest.mark.parametrize(("model", "gpu", "n"), DEPLOYMENTS)
def test_minimum_cap_is_reachable_by_the_clock_alone(
    model: str, gpu: str, n: int, physics: str
) -> None:
    node = build_sim_node(model, gpu, n, physics=physics)
    sim = node.gpus[0]
    pc, spec = sim.power, sim.spec
    coef = node.engine._coef
    # static power: idle, plus the memory subsystem at the bandwidth the minimum clock sustains
    f_min = pc.min_clock_frac
    assert pc.idle_w + pc.hbm_w / pc.dvfs.memory_slowdown(f_min) < spec.min_cap_w
    target_w = spec.min_cap_w * spec.cap_target_frac
    for n_dec, ctx, n_pf in HEAVY_STEPS.values():
        fixed_s, mem_s, cmp_s = coef.work(n_dec, ctx // n, n_pf)
        t_s = step_time_s(f_min, fixed_s, mem_s, cmp_s, pc.dvfs)
        power_w = pc.idle_w + dynamic_energy_j(f_min, mem_s, cmp_s, pc, fixed_s) / t_s
        assert power_w <= target_w, f"{power_w:.0f} W at the minimum clock"
        f, _, _ = solve_clock(fixed_s, mem_s, cmp_s, pc, target_w)
        assert f >= f_min


@pytest.mark.parametrize("physics", PHYSICS_VARIANTS)
def test_power_rises_with_the_clock(physics: str) -> None:
    node = build_sim_node(physics=physics)
    pc = node.gpus[0].power
    coef = node.engine._coef
    for n_dec, ctx, n_pf in ((8, 8000, 0), (64, 64_000, 512), (0, 0, 8192)):
        fixed_s, mem_s, cmp_s = coef.work(n_dec, ctx, n_pf)
        powers = []
        for i in range(1, 41):
            f = pc.min_clock_frac + (1 - pc.min_clock_frac) * i / 40
            t_s = step_time_s(f, fixed_s, mem_s, cmp_s, pc.dvfs)
            powers.append(dynamic_energy_j(f, mem_s, cmp_s, pc, fixed_s) / t_s)
        assert powers == sorted(powers)


def _step_tput(physics: str, cap_w: float, step: tuple[int, int, int]) -> float:
    node = build_sim_node(physics=physics)
    sim = node.gpus[0]
    fixed_s, mem_s, cmp_s = node.engine._coef.work(*step)
    target = sim.spec.cap_target_frac
    _, t_full, _ = solve_clock(fixed_s, mem_s, cmp_s, sim.power, 700.0 * target)
    _, t_cap, _ = solve_clock(fixed_s, mem_s, cmp_s, sim.power, cap_w * target)
    return t_full / t_cap


def test_deep_caps_slow_compute_and_decode_more_under_the_pessimistic_variant() -> None:
    compute, decode = (0, 0, 8192), (8, 8000, 0)
    for cap_w in (200.0, 300.0):
        for step in (compute, decode):
            assert _step_tput("pessimistic", cap_w, step) <= _step_tput("nominal", cap_w, step)
    # published H100 behaviour: compute-bound work at 200 W runs well under half speed, and
    # memory-bound decode loses throughput once the SM clock is low
    assert _step_tput("nominal", 200.0, compute) < 0.45
    assert _step_tput("nominal", 200.0, decode) < 0.9
    assert _step_tput("nominal", 400.0, decode) > 0.95
    knee = dvfs_params("H100-SXM").f_knee
    assert dvfs_params("H100-SXM").memory_slowdown(knee / 2) == pytest.approx(2.0)
