"""build_sim_node refuses bad input with the allowed values; nodes share a clock; the
pacer follows wall time; MoE and TP physics behave as documented."""

from __future__ import annotations

import time

import pytest

from pals_core.errors import ConfigurationError
from pals_core.sim import (
    GPU_NAMES,
    MODEL_NAMES,
    PoissonWorkload,
    RealTimePacer,
    SaturatingWorkload,
    SimClock,
    build_sim_node,
    gpu_spec,
    model_profile,
)
from pals_core.sim.models import DeploymentFit
from pals_core.sim.physics import StepCoefficients


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"llama-3\.1-70b"):
        build_sim_node(model="gpt-5")
    with pytest.raises(ConfigurationError, match="A100-SXM"):
        build_sim_node(gpu="TPU")
    with pytest.raises(ConfigurationError, match=r"supported: H100-SXM x4"):
        build_sim_node(model="llama-3.1-70b", num_gpus=3)
    assert set(MODEL_NAMES) >= {"llama-3.1-8b", "qwen3-30b-a3b", "llama-4-scout"}
    assert GPU_NAMES == ("H100-SXM", "A100-SXM")
    assert gpu_spec("A100-SXM").max_cap_w == 400.0


def test_profiles_carry_moe_flag_and_slo() -> None:
    assert model_profile("qwen3-30b-a3b").is_moe
    assert not model_profile("llama-3.1-8b").is_moe
    assert model_profile("llama-3.1-70b").default_itl_p99_slo_s > 0


def test_moe_weight_traffic_rises_with_tokens_until_all_experts_are_read() -> None:
    prof = model_profile("qwen3-30b-a3b")
    fit = prof.deployment("H100-SXM", 2)
    coef = StepCoefficients.build(prof, gpu_spec("H100-SXM"), 2, fit)
    mem = [coef.work(n, 0, 0)[1] for n in (1, 8, 64, 512)]
    assert mem[0] < mem[1] < mem[2] <= mem[3]
    assert mem[3] == pytest.approx(coef.dense_weight_s + coef.expert_weight_s, rel=1e-3)
    dense = StepCoefficients.build(
        model_profile("llama-3.1-8b"),
        gpu_spec("H100-SXM"),
        1,
        DeploymentFit(0.8, 0.5, 0.001, 0.0, 100, 100, 100, 100000),
    )
    assert dense.work(1, 0, 0)[1] == dense.work(512, 0, 0)[1]


def test_nodes_share_one_clock() -> None:
    clock = SimClock()
    a = build_sim_node(workload=PoissonWorkload(2.0), seed=1, clock=clock)
    b = build_sim_node(
        "qwen3-30b-a3b", num_gpus=2, workload=PoissonWorkload(2.0), seed=2, clock=clock
    )
    clock.sleep(30.0)
    assert a.engine.metrics().timestamp_s == b.engine.metrics().timestamp_s == 30.0
    assert a.engine.metrics().request_success_total > 20
    assert b.engine.metrics().request_success_total > 20


def test_max_throughput_is_the_saturated_capacity() -> None:
    node = build_sim_node(workload=PoissonWorkload(1.0), seed=1)
    cap = node.max_throughput_tok_s()
    assert 7000 < cap < 11000
    assert node.engine.metrics().generation_tokens_total == 0  # measured on a private twin


def test_pacer_follows_wall_time() -> None:
    node = build_sim_node(workload=SaturatingWorkload(), seed=1)
    pacer = RealTimePacer(node.clock, speed=10.0, slice_s=0.01)
    start = time.monotonic()
    pacer.run(duration_s=0.2)
    assert time.monotonic() - start >= 0.2
    assert node.clock.now_s() == pytest.approx(2.0)
    assert node.engine.metrics().generation_tokens_total > 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="device_variation_frac"):
        build_sim_node(device_variation_frac=-0.1)
    with pytest.raises(ConfigurationError, match="noise_frac"):
        build_sim_node(noise_frac=-1)
    with pytest.raises(ConfigurationError, match="num_gpus"):
        build_sim_node(num_gpus=0)
    with pytest.raises(ConfigurationError, match="duration_s"):
        SimClock().sleep(-1)


def test_runs_under_the_control_loop_and_holds_a_budget() -> None:
    from pals_core.control.policy import Action, Observation
    from pals_core.control.runtime import Sample, run_control_loop

    class SplitBudget:
        name = "split-budget"

        def decide(self, obs: Observation) -> Action:
            if obs.power_budget_w is None:
                return Action()
            share = obs.power_budget_w / len(obs.gpus)
            return Action(power_limits_w=tuple(share for _ in obs.gpus))

        def guard(self, obs: Observation) -> Action | None:
            return None

    node = build_sim_node("llama-3.1-70b", num_gpus=4, workload=SaturatingWorkload(), seed=4)
    samples: list[Sample] = []
    run_control_loop(
        SplitBudget(),
        node.gpus,
        node.engine,
        node.clock,
        duration_s=40.0,
        budget_w=lambda t: None if t < 20.0 else 1600.0,
        on_sample=samples.append,
    )
    before = [s for s in samples if 10.0 <= s.time_s < 20.0]
    after = [s for s in samples if s.time_s >= 21.0]
    assert max(s.power_w for s in before) > 1900
    assert max(s.power_w for s in after) <= 1600.0
    tput = [
        (b[-1].generation_tokens_total - b[0].generation_tokens_total)
        / (b[-1].time_s - b[0].time_s)
        for b in (before, after)
    ]
    assert tput[1] < tput[0]
