from __future__ import annotations

import math

import pytest

from pals_core.control import Action, LoopConfig, Observation, Sample, run_control_loop
from pals_core.device import GPUGroup
from pals_core.engine import EngineMetrics, Histogram, ServingEngine
from pals_core.errors import ConfigurationError
from tests.pals_core.device.test_gpu_group import FakeGPU


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def now_s(self) -> float:
        return self.t

    def sleep(self, duration_s: float) -> None:
        self.t += duration_s


class FakeEngine(ServingEngine):
    def __init__(self) -> None:
        self.limit = 256
        self.writes: list[int] = []

    def get_batch_limit(self) -> int:
        return self.limit

    def set_batch_limit(self, max_num_seqs: int) -> None:
        self.writes.append(max_num_seqs)
        self.limit = max_num_seqs

    def metrics(self) -> EngineMetrics:
        empty = Histogram.empty((1.0,))
        return EngineMetrics(0.0, 0, 0, 0, 0, 0, empty, empty, 0.0)


class ScriptedPolicy:
    name = "scripted"

    def __init__(self, limits: tuple[float, ...]) -> None:
        self.limits = limits
        self.decisions: list[float] = []
        self.guards: list[float] = []

    def decide(self, obs: Observation) -> Action:
        self.decisions.append(obs.time_s)
        return Action(power_limits_w=self.limits, batch_limit=64, state="tracking")

    def guard(self, obs: Observation) -> Action | None:
        self.guards.append(obs.time_s)
        return None


def test_loop_decides_each_period_guards_between_and_clamps() -> None:
    gpus = [FakeGPU(0), FakeGPU(1)]
    engine = FakeEngine()
    policy = ScriptedPolicy((100.0, 450.0))  # 100 W is below the 200 W minimum
    samples: list[Sample] = []
    with GPUGroup(gpus) as group:
        run_control_loop(
            policy,
            group,
            engine,
            FakeClock(),
            duration_s=2.0,
            budget_w=lambda t: 900.0 if t < 1.0 else 600.0,
            on_sample=samples.append,
        )
        assert [g.limit_w for g in gpus] == [200.0, 450.0]  # clamped, never below the minimum
        assert gpus[0].writes == [200.0] and gpus[1].writes == [450.0]  # written once
    assert [g.limit_w for g in gpus] == [700.0, 700.0]  # restored on exit
    assert policy.decisions == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert len(policy.guards) == 16
    assert engine.writes == [64]
    assert len(samples) == 20 and samples[0].decided and not samples[1].decided
    assert samples[4].power_budget_w == 900.0 and samples[10].power_budget_w == 600.0
    assert samples[-1].state == "tracking"


def test_period_must_be_a_multiple_of_tick() -> None:
    with pytest.raises(ConfigurationError, match="whole multiple"):
        LoopConfig(period_s=0.25, tick_s=0.1)


@pytest.mark.parametrize("bad", [math.nan, 0.0, -50.0, -math.inf])
def test_a_nan_zero_or_negative_budget_is_refused_naming_the_time(bad: float) -> None:
    gpus = [FakeGPU(0)]
    with (
        GPUGroup(gpus) as group,
        pytest.raises(ConfigurationError, match=r"power budget at t=0\.5 s"),
    ):
        run_control_loop(
            ScriptedPolicy((300.0,)),
            group,
            FakeEngine(),
            FakeClock(),
            duration_s=1.0,
            budget_w=lambda t: 500.0 if t < 0.5 else bad,
        )


def test_an_infinite_budget_means_no_limit() -> None:
    seen: list[float | None] = []

    class Recording(ScriptedPolicy):
        def decide(self, obs: Observation) -> Action:
            seen.append(obs.power_budget_w)
            return super().decide(obs)

    with GPUGroup([FakeGPU(0)]) as group:
        run_control_loop(
            Recording((300.0,)),
            group,
            FakeEngine(),
            FakeClock(),
            duration_s=1.0,
            budget_w=lambda _t: math.inf,
        )
    assert seen == [None, None]


class EngineWithoutBatchKnob(FakeEngine):
    def batch_limit_unavailable_reason(self) -> str | None:
        return "no plugin: start vLLM with --scheduler-cls ..."

    def set_batch_limit(self, max_num_seqs: int) -> None:
        raise AssertionError("the loop must not write a batch limit the engine cannot take")


def test_an_engine_without_a_batch_knob_runs_cap_only(caplog: pytest.LogCaptureFixture) -> None:
    gpus = [FakeGPU(0)]
    engine = EngineWithoutBatchKnob()
    with caplog.at_level("WARNING", logger="pals_core.control.runtime"), GPUGroup(gpus) as group:
        run_control_loop(ScriptedPolicy((450.0,)), group, engine, FakeClock(), duration_s=1.0)
        assert gpus[0].writes == [450.0]  # the cap still follows the policy
    assert engine.limit == 256
    assert "running cap-only" in caplog.text and "--scheduler-cls" in caplog.text
