"""``cap-latency``: a power-cap controller on latency feedback, the cheap alternative to PALS.

What an operator without a performance model would build: the batch limit stays at stock's, and
the cap follows the measured latency. Every control period it reads the running QoS window's
ITL histogram (and TTFT, when the SLO has one) since the window began; the worse of the two
ratios p99 / SLO drives the cap (W per GPU, the same on every GPU):

- above ``high``, as soon as the window holds ``min_samples`` tokens: up by ``gain_up_w`` per
  unit of (ratio - high + 0.05), at most ``step_up_max_w``, and a new window begins;
- a completed window under ``setpoint`` with nobody waiting: down by ``gain_down_w`` per unit
  of distance, at most ``step_down_max_w``;
- requests waiting at the end of a window with a growing queue: up by ``step_up_max_w``
  (capacity is short whatever the latency says);
- otherwise held.

A budget is kept exactly as :class:`~pals_core.control.baselines.CapOnlyPolicy` keeps it (the
caps are the lower of the latency cap and cap-only's), with the same guard, from the same
energy-counter signal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pals_core.control.baselines import DEFAULT_BATCH_LIMIT, CapOnlyPolicy
from pals_core.control.policy import Action, Observation
from pals_core.control.qos import QoSPolicy
from pals_core.engine.base import Histogram


@dataclass(frozen=True, slots=True)
class CapLatencyConfig:
    setpoint: float = 0.7
    high: float = 0.95
    window_s: float = 5.0
    min_samples: int = 500
    gain_up_w: float = 300.0
    step_up_max_w: float = 60.0
    gain_down_w: float = 150.0
    step_down_max_w: float = 30.0


class CapLatencyPolicy:
    """Cap on latency feedback, batch at stock's, budget kept as cap-only keeps it."""

    name = "cap-latency"

    def __init__(
        self,
        qos: QoSPolicy,
        config: CapLatencyConfig | None = None,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
    ) -> None:
        self.qos = qos
        self.config = config or CapLatencyConfig()
        self.batch_limit = batch_limit
        self._budget = CapOnlyPolicy(batch_limit=batch_limit)
        self._cap_w = math.inf
        self._itl_ref: Histogram | None = None
        self._ttft_ref: Histogram | None = None
        self._ref_time_s = math.nan
        self._waiting_ref = 0

    def _ratio(self, obs: Observation) -> tuple[float, int]:
        """The window's worst p99 / SLO so far, and its ITL sample count."""
        assert self._itl_ref is not None and self._ttft_ref is not None
        itl = obs.metrics.inter_token_latency_seconds.minus(self._itl_ref)
        ratio = itl.quantile(0.99) / self.qos.itl_p99_slo_s if itl.count else 0.0
        if self.qos.ttft_p99_slo_s is not None:
            ttft = obs.metrics.time_to_first_token_seconds.minus(self._ttft_ref)
            if ttft.count:
                ratio = max(ratio, ttft.quantile(0.99) / self.qos.ttft_p99_slo_s)
        return ratio, itl.count

    def _restart_window(self, obs: Observation) -> None:
        self._itl_ref = obs.metrics.inter_token_latency_seconds
        self._ttft_ref = obs.metrics.time_to_first_token_seconds
        self._ref_time_s = obs.time_s
        self._waiting_ref = obs.metrics.num_requests_waiting

    def _update_cap(self, obs: Observation) -> None:
        cfg = self.config
        lo = max(g.min_limit_w for g in obs.gpus)
        hi = min(g.max_limit_w for g in obs.gpus)
        if not math.isfinite(self._cap_w):
            self._cap_w = hi  # start where stock runs, and walk down while the SLO holds
        if self._itl_ref is None:
            self._restart_window(obs)
            return
        ratio, samples = self._ratio(obs)
        complete = obs.time_s - self._ref_time_s >= cfg.window_s - 1e-9
        waiting = obs.metrics.num_requests_waiting
        if samples >= cfg.min_samples and ratio > cfg.high:
            self._cap_w += min(cfg.step_up_max_w, cfg.gain_up_w * (ratio - cfg.high + 0.05))
            self._restart_window(obs)
        elif complete:
            if waiting > 0 and waiting > self._waiting_ref:
                self._cap_w += cfg.step_up_max_w
            elif waiting == 0 and samples >= cfg.min_samples and ratio < cfg.setpoint:
                self._cap_w -= min(cfg.step_down_max_w, cfg.gain_down_w * (cfg.setpoint - ratio))
            self._restart_window(obs)
        self._cap_w = min(hi, max(lo, self._cap_w))

    def decide(self, obs: Observation) -> Action:
        budget_action = self._budget.decide(obs)
        self._update_cap(obs)
        caps = tuple(min(self._cap_w, g.max_limit_w) for g in obs.gpus)
        if budget_action.power_limits_w is not None and obs.power_budget_w is not None:
            caps = tuple(min(a, b) for a, b in zip(caps, budget_action.power_limits_w, strict=True))
        return Action(caps, self.batch_limit, state="tracking")

    def guard(self, obs: Observation) -> Action | None:
        return self._budget.guard(obs)
