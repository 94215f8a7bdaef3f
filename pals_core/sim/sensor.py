"""NVML's power reading and energy counter, as a simulated GPU reports them.

What NVML gives on the GPUs simulated here (see docs/simulator.md, "Readings"):

* The board sensor is refreshed every ``UPDATE_PERIOD_S`` (100 ms), and each refresh averages
  only the last ``SAMPLE_WINDOW_S`` (25 ms) of it: on A100 and H100 about a quarter of the run
  time is sampled (Yang, Adamek and Armour, "Accurate and Convenient Energy Measurements for
  GPUs", SC 2024).
* ``nvmlDeviceGetPowerUsage`` returns whole milliwatts. On Ampere and newer GPUs except GA100 it
  is the average over the last 1 s (the last ten samples here); on GA100 (A100) it is the
  latest sample ("instantaneous" in NVML's documentation).
* ``nvmlDeviceGetTotalEnergyConsumption`` returns whole millijoules since the driver loaded; the
  simulated counter integrates the drawn power exactly and is read out at each refresh.

Refresh instants lie on a fixed grid (multiples of 100 ms of simulated time) so two GPUs (and
two runs) refresh at the same instants. Optional noise multiplies each refreshed power reading by
``1 + N(0, noise_frac)``.
"""

from __future__ import annotations

import math
import random
from collections import deque

UPDATE_PERIOD_S = 0.1
SAMPLE_WINDOW_S = 0.025
POWER_RESOLUTION_W = 1e-3
ENERGY_RESOLUTION_J = 1e-3
_EPS = 1e-9


class NvmlSensor:
    """The readings of one GPU; :meth:`advance` feeds it constant-power slices in time order."""

    def __init__(
        self,
        start_s: float,
        initial_w: float,
        power_window_s: float,
        noise_frac: float,
        rng: random.Random,
    ) -> None:
        self._samples_per_reading = max(1, round(power_window_s / UPDATE_PERIOD_S))
        self._samples: deque[float] = deque(
            [initial_w] * self._samples_per_reading, maxlen=self._samples_per_reading
        )
        self._noise_frac = noise_frac
        self._rng = rng
        self.power_w = _quantize(initial_w, POWER_RESOLUTION_W)
        self.energy_j = 0.0
        tick = math.floor(start_s / UPDATE_PERIOD_S + _EPS) + 1
        self._tick = tick
        self._sample_start_e: float | None = None
        self.next_boundary_s = tick * UPDATE_PERIOD_S - SAMPLE_WINDOW_S
        self._at_sample_start = True

    def copy_state(self, other: NvmlSensor) -> None:
        """Take ``other``'s state (a GPU fed identical work); noise stays this sensor's own."""
        refreshed = self._tick != other._tick
        if refreshed or self._at_sample_start != other._at_sample_start:
            self._samples = deque(other._samples, maxlen=self._samples_per_reading)
        if refreshed and self._noise_frac:
            self.power_w = self._reading_w()
        elif not self._noise_frac:
            self.power_w = other.power_w
        self.energy_j = other.energy_j
        self._tick = other._tick
        self._sample_start_e = other._sample_start_e
        self.next_boundary_s = other.next_boundary_s
        self._at_sample_start = other._at_sample_start

    def advance(self, t0_s: float, energy0_j: float, t1_s: float, power_w: float) -> None:
        """Account a slice drawing ``power_w`` from ``t0_s`` (exact energy ``energy0_j``) to
        ``t1_s``: take every sample start and refresh that falls inside it."""
        ticks_inside = math.floor(t1_s / UPDATE_PERIOD_S + _EPS) - self._tick
        if ticks_inside > self._samples_per_reading + 1:
            # a long constant slice: skip to the last refreshes, all of which sample power_w
            skip = ticks_inside - self._samples_per_reading - 1
            self._tick += skip
            self.next_boundary_s = self._tick * UPDATE_PERIOD_S - SAMPLE_WINDOW_S
            self._at_sample_start = True
        while self.next_boundary_s <= t1_s + _EPS:
            at_s = self.next_boundary_s
            energy_j = energy0_j + power_w * max(0.0, at_s - t0_s)
            if self._at_sample_start:
                self._sample_start_e = energy_j
                self._at_sample_start = False
                self.next_boundary_s = self._tick * UPDATE_PERIOD_S
                continue
            start_e = self._sample_start_e if self._sample_start_e is not None else energy_j
            self._refresh((energy_j - start_e) / SAMPLE_WINDOW_S, energy_j)
            self._tick += 1
            self._at_sample_start = True
            self.next_boundary_s = self._tick * UPDATE_PERIOD_S - SAMPLE_WINDOW_S

    def _reading_w(self) -> float:
        mean_w = sum(self._samples) / len(self._samples)
        if self._noise_frac:
            mean_w = max(0.0, mean_w * (1.0 + self._rng.gauss(0.0, self._noise_frac)))
        return _quantize(mean_w, POWER_RESOLUTION_W)

    def _refresh(self, sample_w: float, energy_j: float) -> None:
        self._samples.append(sample_w)
        self.power_w = self._reading_w()
        whole_mj = math.floor(energy_j / ENERGY_RESOLUTION_J + _EPS)
        self.energy_j = round(whole_mj * ENERGY_RESOLUTION_J, 9)


def _quantize(value: float, step: float) -> float:
    return round(round(value / step) * step, 9)
