from __future__ import annotations

import pytest

from pals_core.device import GPU, GPUGroup, PowerLimitConstraints
from pals_core.errors import PowerLimitOutOfRangeError


class FakeGPU(GPU):
    def __init__(self, index: int, limit_w: float = 700.0) -> None:
        self.index, self.uuid, self.name = index, f"GPU-{index}", "fake"
        self.limit_w = limit_w
        self.writes: list[float] = []

    def power_limit_constraints(self) -> PowerLimitConstraints:
        return PowerLimitConstraints(200.0, 700.0, 700.0)

    def get_power_limit_w(self) -> float:
        return self.limit_w

    def set_power_limit_w(self, power_w: float) -> None:
        self.power_limit_constraints().check(self.index, power_w)
        if power_w != self.limit_w:
            self.writes.append(power_w)
            self.limit_w = power_w

    def get_power_w(self) -> float:
        return 100.0

    def get_energy_j(self) -> float:
        return 0.0

    def get_sm_clock_mhz(self) -> float:
        return 1980.0

    def get_temperature_c(self) -> float:
        return 40.0

    def get_memory_used_bytes(self) -> int:
        return 0


def test_group_restores_original_limits_on_exit() -> None:
    gpus = [FakeGPU(0, 650.0), FakeGPU(1, 700.0)]
    with GPUGroup(gpus) as group:
        group.set_power_limits_w([400.0, 300.0])
        group.set_power_limit_w(0, 350.0)
        assert [g.limit_w for g in gpus] == [350.0, 300.0]
    assert [g.limit_w for g in gpus] == [650.0, 700.0]


def test_group_restores_after_an_exception() -> None:
    gpu = FakeGPU(0)
    with pytest.raises(RuntimeError), GPUGroup([gpu]) as group:
        group.set_power_limit_w(0, 300.0)
        raise RuntimeError("controller crashed")
    assert gpu.limit_w == 700.0


def test_out_of_range_is_refused_before_any_write() -> None:
    gpu = FakeGPU(3)
    group = GPUGroup([gpu])
    with pytest.raises(PowerLimitOutOfRangeError, match=r"GPU 3 .*\[200\.0, 700\.0\] W"):
        group.set_power_limit_w(0, 150.0)
    assert gpu.writes == []
    assert group.changed_positions == []


def test_wrong_number_of_limits_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 2 power limits, got 1"):
        GPUGroup([FakeGPU(0), FakeGPU(1)]).set_power_limits_w([300.0])


def test_constraints_clamp() -> None:
    c = PowerLimitConstraints(100.0, 400.0, 400.0)
    assert c.clamp(50.0) == 100.0 and c.clamp(500.0) == 400.0 and c.clamp(250.0) == 250.0
