"""The baselines PALS is measured against, each a :class:`~pals_core.control.policy.Policy`.

All of them see exactly what PALS sees (an :class:`Observation`) and act through the same
runtime loop, so a difference in results is a difference in the control law, nothing else.

- :class:`StockPolicy` (``stock``): vLLM as shipped. Maximum power cap, vLLM's default batch limit
  for the GPU (:func:`vllm_default_max_num_seqs`: 1024 on an H100), no notion of a power budget.
- :class:`CapOnlyPolicy` (``cap-only``): keeps the budget with the power cap alone, the batch
  limit fixed at stock's. Feed-forward (caps summing to the budget minus a margin) plus a PI
  correction on measured power, and a guard that cuts the caps at once when the node is over
  budget. This is the power-capping controller of the published comparison, built to be good at
  keeping the budget: the weakness it shows is in *how* it spends the watts, not in tracking them.
- :class:`BatchOnlyPolicy` (``batch-only``): keeps the budget with the batch limit alone, caps
  at maximum. A lowered batch limit only stops new admissions (running sequences finish), so
  this controller acts with a delay of one sequence lifetime; that is its inherent weakness.
- :class:`FixedPolicy`: one fixed (cap, batch limit), used to replay the ``oracle-static``
  configuration found by exhaustive search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pals_core.control.policy import Action, EnergyMeter, Observation
from pals_core.engine.base import DEFAULT_MAX_NUM_SEQS
from pals_core.errors import ConfigurationError

DEFAULT_BATCH_LIMIT = DEFAULT_MAX_NUM_SEQS
"""vLLM's default ``max_num_seqs`` on GPUs under 70 GiB and on A100s."""
LARGE_GPU_BATCH_LIMIT = 1024
"""vLLM's default ``max_num_seqs`` for the OpenAI server on GPUs of >= 70 GiB other than A100."""
VLLM_VERSION_MODELLED = "0.10"
"""The vLLM release (V1 engine) whose defaults stock models: ``EngineArgs`` in
``vllm/engine/arg_utils.py`` picks ``max_num_seqs`` by usage context and device memory."""


def vllm_default_max_num_seqs(gpu_product_name: str, gpu_memory_gib: float) -> int:
    """vLLM's default batch limit for the OpenAI server on this GPU (``VLLM_VERSION_MODELLED``):
    1024 on a GPU of at least 70 GiB that is not an A100, 256 otherwise."""
    if gpu_memory_gib >= 70 and "a100" not in gpu_product_name.lower():
        return LARGE_GPU_BATCH_LIMIT
    return DEFAULT_BATCH_LIMIT


def _max_caps(obs: Observation) -> tuple[float, ...]:
    return tuple(g.max_limit_w for g in obs.gpus)


def _spread_caps(obs: Observation, total_w: float) -> tuple[float, ...]:
    """Split ``total_w`` evenly over the GPUs, each clamped to its own limits."""
    per_gpu_w = total_w / len(obs.gpus)
    return tuple(min(g.max_limit_w, max(g.min_limit_w, per_gpu_w)) for g in obs.gpus)


class StockPolicy:
    """vLLM as shipped: maximum caps, the default batch limit, budget ignored."""

    name = "stock"

    def __init__(self, batch_limit: int = DEFAULT_BATCH_LIMIT) -> None:
        if batch_limit < 1:
            raise ConfigurationError(f"batch_limit must be >= 1, got {batch_limit}")
        self.batch_limit = batch_limit

    def decide(self, obs: Observation) -> Action:
        return Action(power_limits_w=_max_caps(obs), batch_limit=self.batch_limit, state="stock")

    def guard(self, obs: Observation) -> Action | None:
        return None


class FixedPolicy:
    """One fixed configuration for the whole run (the replay of ``oracle-static``)."""

    def __init__(self, cap_w: float, batch_limit: int, name: str = "oracle-static") -> None:
        if not cap_w > 0:
            raise ConfigurationError(f"cap_w must be > 0, got {cap_w}")
        if batch_limit < 1:
            raise ConfigurationError(f"batch_limit must be >= 1, got {batch_limit}")
        self.name = name
        self.cap_w = cap_w
        self.batch_limit = batch_limit

    def decide(self, obs: Observation) -> Action:
        caps = tuple(self.cap_w for _ in obs.gpus)
        return Action(power_limits_w=caps, batch_limit=self.batch_limit, state="fixed")

    def guard(self, obs: Observation) -> Action | None:
        return None


@dataclass(frozen=True, slots=True)
class CapOnlyConfig:
    margin_frac: float = 0.03
    """Setpoint = budget x (1 - margin): head-room for measurement noise and load bursts."""
    ki: float = 0.3
    """Integral gain on the power error, per control period (dimensionless: W of cap per W)."""
    kp: float = 0.2
    """Proportional gain on the power error."""
    correction_min_frac: float = -0.25
    """Lowest integral correction, as a fraction of the setpoint (caps that under-deliver)."""
    correction_max_frac: float = 0.0
    """Highest integral correction: 0 keeps the caps' sum at or under the setpoint."""
    binding_frac: float = 0.92
    """The caps bind when power exceeds this fraction of their sum; only then does the
    integrator wind up (anti-windup: a light load must not push the caps above the budget)."""


class CapOnlyPolicy:
    """Power-cap-only budget tracking (the batch limit stays at stock's).

    Each period the caps' sum is ``setpoint + correction + kp * error`` with
    ``setpoint = budget * (1 - margin)`` and ``error = setpoint - measured power``; the
    correction integrates the error while the caps bind, and whenever power is above the
    setpoint. Each tick between periods, the guard cuts the caps at once, in proportion, when
    measured power exceeds the budget. Unconstrained: caps at maximum.
    """

    name = "cap-only"

    def __init__(
        self, config: CapOnlyConfig | None = None, batch_limit: int = DEFAULT_BATCH_LIMIT
    ) -> None:
        self.config = config or CapOnlyConfig()
        if not 0 <= self.config.margin_frac < 0.5:
            raise ConfigurationError(
                f"margin_frac must be within [0, 0.5), got {self.config.margin_frac}"
            )
        self.batch_limit = batch_limit
        self._correction_w = 0.0
        self._tick_meter = EnergyMeter()
        self._period_meter = EnergyMeter()

    def _setpoint_w(self, budget_w: float) -> float:
        return budget_w * (1.0 - self.config.margin_frac)

    def decide(self, obs: Observation) -> Action:
        self._tick_meter.power_w(obs)  # a decision tick is also a tick
        power_w = self._period_meter.power_w(obs)
        budget_w = obs.power_budget_w
        if budget_w is None:
            self._correction_w = 0.0
            return Action(_max_caps(obs), self.batch_limit, state="unconstrained")
        cfg = self.config
        setpoint_w = self._setpoint_w(budget_w)
        error_w = setpoint_w - power_w
        binding = power_w >= cfg.binding_frac * obs.total_limit_w
        if binding or error_w < 0:
            self._correction_w += cfg.ki * error_w
        lo, hi = cfg.correction_min_frac * setpoint_w, cfg.correction_max_frac * setpoint_w
        self._correction_w = min(hi, max(lo, self._correction_w))
        total_w = setpoint_w + self._correction_w + cfg.kp * min(0.0, error_w)
        return Action(_spread_caps(obs, total_w), self.batch_limit, state="tracking")

    def guard(self, obs: Observation) -> Action | None:
        power_w = self._tick_meter.power_w(obs)
        budget_w = obs.power_budget_w
        if budget_w is None:
            return None
        setpoint_w = self._setpoint_w(budget_w)
        limit_w = obs.total_limit_w
        if power_w <= budget_w and limit_w <= budget_w:
            return None
        # Over budget, or the caps allow more than the budget (the budget just fell): cut to the
        # setpoint now, scaled down by how far the measured power overshoots its caps.
        overshoot = max(1.0, power_w / limit_w) if limit_w > 0 else 1.0
        total_w = min(limit_w, setpoint_w / overshoot)
        return Action(_spread_caps(obs, total_w), state="guard")


@dataclass(frozen=True, slots=True)
class BatchOnlyConfig:
    margin_frac: float = 0.05
    """Setpoint = budget x (1 - margin); larger than cap-only's because the batch acts late."""
    exponent: float = 2.0
    """Batch scales as (setpoint / power) ** exponent: power grows sub-linearly with batch."""
    max_step_up: float = 1.25
    """At most this factor of increase per period (admissions raise power quickly)."""
    min_batch: int = 1
    max_batch: int = DEFAULT_BATCH_LIMIT


class BatchOnlyPolicy:
    """Batch-limit-only budget tracking (caps at maximum).

    The power drawn follows the number of *running* sequences, so the law is written on it, not
    on the previous limit (which would compound while old sequences drain): over the setpoint,
    ``limit = running * (setpoint / power) ** exponent``; under it, with requests waiting, the
    limit rises by at most ``max_step_up`` per period toward the same estimate. The guard applies
    the cut at once, each tick, when measured power exceeds the budget. Unconstrained: stock's
    batch limit.

    Where even the smallest batch at full caps draws more than the budget, no batch limit keeps
    it: the policy then says so (state ``infeasible``, ``qos_risk``) instead of pretending; the
    experiments report such runs as infeasible rather than compare their efficiency.
    """

    name = "batch-only"

    def __init__(self, config: BatchOnlyConfig | None = None) -> None:
        self.config = config or BatchOnlyConfig()
        if not 1 <= self.config.min_batch <= self.config.max_batch:
            raise ConfigurationError("need 1 <= min_batch <= max_batch")
        self._batch = self.config.max_batch
        self._tick_meter = EnergyMeter()
        self._period_meter = EnergyMeter()

    def _clamp(self, batch: float) -> int:
        return min(self.config.max_batch, max(self.config.min_batch, math.floor(batch)))

    def _estimate(self, obs: Observation, budget_w: float, power_w: float) -> float:
        """The running batch that would draw the setpoint, from the one drawing today's power."""
        setpoint_w = budget_w * (1.0 - self.config.margin_frac)
        ratio = (setpoint_w / max(power_w, 1.0)) ** self.config.exponent
        return max(1, obs.metrics.num_requests_running) * ratio

    def decide(self, obs: Observation) -> Action:
        self._tick_meter.power_w(obs)  # a decision tick is also a tick
        power_w = self._period_meter.power_w(obs)
        cfg = self.config
        budget_w = obs.power_budget_w
        if budget_w is None:
            self._batch = cfg.max_batch
            return Action(_max_caps(obs), cfg.max_batch, state="unconstrained")
        estimate = self._estimate(obs, budget_w, power_w)
        setpoint_w = budget_w * (1.0 - cfg.margin_frac)
        if power_w > setpoint_w:
            self._batch = self._clamp(min(self._batch, estimate))
        elif obs.metrics.num_requests_waiting > 0:
            # At least one more sequence per period, so a small limit can climb back.
            step_up = max(self._batch * cfg.max_step_up, self._batch + 1.0)
            self._batch = self._clamp(min(step_up, max(estimate, self._batch + 1.0)))
        if self._batch <= cfg.min_batch and power_w > budget_w:
            return Action(_max_caps(obs), self._batch, state="infeasible", qos_risk=True)
        return Action(_max_caps(obs), self._batch, state="tracking")

    def guard(self, obs: Observation) -> Action | None:
        power_w = self._tick_meter.power_w(obs)
        budget_w = obs.power_budget_w
        if budget_w is None or power_w <= budget_w:
            return None
        self._batch = self._clamp(min(self._batch, self._estimate(obs, budget_w, power_w)))
        if self._batch <= self.config.min_batch:  # the same verdict as decide's: no flicker
            return Action(batch_limit=self._batch, state="infeasible", qos_risk=True)
        return Action(batch_limit=self._batch, state="guard")
