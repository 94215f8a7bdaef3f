"""The contract between the runtime loop and any control policy (PALS or a baseline).

The loop observes the node every tick (default 0.1 s) and calls :meth:`Policy.guard`, a cheap
budget-safety check that may cut caps at once; every control period (default 0.5 s) it calls
:meth:`Policy.decide` for a full decision. Policies see only what a real node agent can measure
(GPU power and energy from NVML, the engine's Prometheus counters); never simulator internals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from pals_core.engine.base import EngineMetrics


@dataclass(frozen=True, slots=True)
class GPUReading:
    """What the device layer reports for one GPU at one instant."""

    power_w: float
    energy_j: float
    power_limit_w: float
    min_limit_w: float
    max_limit_w: float


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything a policy may know at one instant."""

    time_s: float
    power_budget_w: float | None
    """The node's GPU power budget (sum over its GPUs); None when unconstrained."""
    throughput_target_tok_s: float | None
    """An operator-set output-token target; None means "serve the offered load"."""
    gpus: tuple[GPUReading, ...]
    metrics: EngineMetrics
    batch_limit: int

    @property
    def total_power_w(self) -> float:
        return sum(g.power_w for g in self.gpus)

    @property
    def total_limit_w(self) -> float:
        return sum(g.power_limit_w for g in self.gpus)


@dataclass(frozen=True, slots=True)
class Action:
    """What a policy wants applied. ``None`` leaves a knob unchanged."""

    power_limits_w: tuple[float, ...] | None = None
    batch_limit: int | None = None
    state: str = ""
    """The policy's state-machine state after this decision (for logs and plots)."""
    qos_risk: bool = False
    """True when the policy knows it cannot meet the throughput target within the budget."""


NO_CHANGE = Action()


class Policy(Protocol):
    """A control policy. Implementations keep their own state between calls."""

    name: str

    def decide(self, obs: Observation) -> Action:
        """A full decision, once per control period."""
        ...

    def guard(self, obs: Observation) -> Action | None:
        """A fast safety check, every tick between decisions; None for no change."""
        ...


class EnergyMeter:
    """Node GPU power from the energy counters between two readings: the signal every policy
    reads (PALS, and each baseline), so that no controller works from a better sensor than
    another. The first reading has no interval: it falls back to the instantaneous power."""

    def __init__(self) -> None:
        self._time_s = math.nan
        self._energy_j: tuple[float, ...] = ()

    def power_w(self, obs: Observation) -> float:
        """Mean power since the previous call (W, summed over the GPUs)."""
        energy = tuple(g.energy_j for g in obs.gpus)
        dt_s = obs.time_s - self._time_s
        power_w = obs.total_power_w
        if len(energy) == len(self._energy_j) and dt_s > 0:
            power_w = sum(e - p for e, p in zip(energy, self._energy_j, strict=True)) / dt_s
        self._time_s, self._energy_j = obs.time_s, energy
        return power_w
