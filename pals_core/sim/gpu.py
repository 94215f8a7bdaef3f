"""A simulated GPU: power limit with first-order settling, and NVML-like sensor readings.

The engine drives it: for every slice of simulated time it calls :meth:`SimGPU.commit` with the
power drawn and the SM clock used. The readings are NVML's (see :mod:`pals_core.sim.sensor`):
``get_power_w`` is refreshed every 100 ms from 25 ms samples, averaged over the GPU type's
window and reported in whole mW; ``get_energy_j`` is the energy counter at the latest refresh, in
whole mJ. No controller sees anything more exact; :meth:`SimGPU.exact_energy_j` (the simulator's
ground truth) is for calibration and reports only.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from pals_core.clock import Clock
from pals_core.device.gpu import GPU, PowerLimitConstraints
from pals_core.errors import ConfigurationError
from pals_core.sim.hardware import GPUSpec
from pals_core.sim.physics import PowerCoefficients
from pals_core.sim.sensor import NvmlSensor

AMBIENT_C = 30.0
THERMAL_RESISTANCE_C_PER_W = 0.07
THERMAL_TIME_CONSTANT_S = 20.0
_SETTLE_SLICES = 5


class SimGPU(GPU):
    """One simulated GPU. ``cap_settle_s``: a new limit is fully in force this long after the
    write; in between the enforced limit moves toward it first-order (time constant
    ``cap_settle_s / 4``) in ``cap_settle_s / 5`` slices."""

    def __init__(
        self,
        index: int,
        spec: GPUSpec,
        clock: Clock,
        power: PowerCoefficients,
        speed_factor: float = 1.0,
        noise_frac: float = 0.0,
        noise_seed: int = 0,
        cap_settle_s: float = 0.05,
    ) -> None:
        if not noise_frac >= 0:
            raise ConfigurationError(f"noise_frac must be >= 0, got {noise_frac}")
        if not cap_settle_s > 0:
            raise ConfigurationError(f"cap_settle_s must be > 0, got {cap_settle_s}")
        self.index = index
        self.uuid = f"GPU-sim-{noise_seed:08x}-{index:04d}"
        self.name = spec.product_name
        self.spec = spec
        self.power = power
        self.speed_factor = speed_factor
        self.idle_w = power.idle_w
        """Draw with no step running (the engine commits this while idle)."""
        self._clock = clock
        self._constraints = PowerLimitConstraints(
            spec.min_cap_w, spec.max_cap_w, spec.default_cap_w
        )
        self._sensor = NvmlSensor(
            clock.now_s(),
            power.idle_w,
            spec.power_window_s,
            noise_frac,
            random.Random(noise_seed),
        )
        self._cap_w = spec.default_cap_w
        self._cap_from_w = spec.default_cap_w
        self._cap_change_s = -math.inf
        self._settle_s = cap_settle_s
        self._settle_end_s = -math.inf
        self._t = clock.now_s()
        self._energy_j = 0.0
        self._temp_c = AMBIENT_C + THERMAL_RESISTANCE_C_PER_W * power.idle_w
        self._temp_t = self._t
        self._temp_energy_j = 0.0
        self._clock_frac = 1.0
        self.on_cap_change: Callable[[], None] = lambda: None
        self.memory_used_fn: Callable[[], int] = lambda: 0

    # -- GPU interface ---------------------------------------------------------------------
    def power_limit_constraints(self) -> PowerLimitConstraints:
        return self._constraints

    def get_power_limit_w(self) -> float:
        return self._cap_w

    def set_power_limit_w(self, power_w: float) -> None:
        self._constraints.check(self.index, power_w)
        if power_w == self._cap_w:
            return
        now = self._clock.now_s()
        self._cap_from_w = self.effective_cap_w(now)
        self._cap_w = float(power_w)
        self._cap_change_s = now
        self._settle_end_s = now + self._settle_s
        self.on_cap_change()

    def get_power_w(self) -> float:
        return self._sensor.power_w

    def get_energy_j(self) -> float:
        return self._sensor.energy_j

    def exact_energy_j(self) -> float:
        """The exact integral of the drawn power (simulator ground truth, not an NVML reading:
        for calibration and reports, never for a controller)."""
        return self._energy_j

    def get_sm_clock_mhz(self) -> float:
        return self._clock_frac * self.spec.max_sm_clock_mhz

    def get_temperature_c(self) -> float:
        return self._temp_c

    def get_memory_used_bytes(self) -> int:
        return self.memory_used_fn()

    # -- driven by the engine --------------------------------------------------------------
    def effective_cap_w(self, t_s: float) -> float:
        """The limit the power controller enforces at ``t_s`` (settling toward the setpoint)."""
        if t_s >= self._settle_end_s:
            return self._cap_w
        width = self._settle_s / _SETTLE_SLICES
        i = math.floor((t_s - self._cap_change_s) / width + 1e-9)
        tau = self._settle_s / 4.0
        return self._cap_w + (self._cap_from_w - self._cap_w) * math.exp(-(i + 0.5) * width / tau)

    def next_cap_change_s(self, t_s: float) -> float:
        """When the enforced limit next moves (``inf`` when settled)."""
        if t_s >= self._settle_end_s:
            return math.inf
        width = self._settle_s / _SETTLE_SLICES
        i = math.floor((t_s - self._cap_change_s) / width + 1e-9)
        return min(self._cap_change_s + (i + 1) * width, self._settle_end_s)

    def target_w(self, t_s: float) -> float:
        """Average draw the power controller allows at ``t_s``."""
        cap = self._cap_w if t_s >= self._settle_end_s else self.effective_cap_w(t_s)
        return cap * self.spec.cap_target_frac

    def copy_state(self, other: SimGPU) -> None:
        """Take ``other``'s power state (identical GPUs fed identical work)."""
        self._energy_j = other._energy_j
        self._sensor.copy_state(other._sensor)
        self._clock_frac = other._clock_frac
        self._t = other._t
        self._temp_c = other._temp_c
        self._temp_t = other._temp_t
        self._temp_energy_j = other._temp_energy_j

    def commit(self, t_end_s: float, power_w: float, clock_frac: float) -> None:
        """Draw ``power_w`` from the last committed time until ``t_end_s``."""
        dt = t_end_s - self._t
        if dt <= 0:
            return
        if t_end_s >= self._sensor.next_boundary_s - 1e-9:
            self._sensor.advance(self._t, self._energy_j, t_end_s, power_w)
        self._energy_j += power_w * dt
        self._clock_frac = clock_frac
        self._t = t_end_s
        # temperature lags by ~20 s: update it from the mean power of >= 1 s slices
        if t_end_s - self._temp_t >= 1.0:
            span = t_end_s - self._temp_t
            steady_c = AMBIENT_C + THERMAL_RESISTANCE_C_PER_W * (
                (self._energy_j - self._temp_energy_j) / span
            )
            self._temp_c = steady_c + (self._temp_c - steady_c) * math.exp(
                -span / THERMAL_TIME_CONSTANT_S
            )
            self._temp_t = t_end_s
            self._temp_energy_j = self._energy_j
