"""The experiment metrics, as pure functions over a run's recorded series.

Definitions (the same for every controller; ``docs/results.md`` repeats them):

- **Power** is the GPUs' interval power ``(E[i+1] - E[i]) / (t[i+1] - t[i])`` from the energy
  counters between two control ticks (0.1 s). It is what the facility meter sees; the
  instantaneous readings carry measurement noise that is not physical draw. The budget in force
  over an interval is the one at its start.
- **Budget step**: the budget falls (or rises) by more than ``step_threshold_frac`` (0.5 %) of its
  previous value between two ticks; a budget that appears (unconstrained -> constrained, e.g. at
  the start of a run) is a fall. A slow ramp is not a step.
- **Settling window**: ``settle_window_s`` (1 s) after each fall. The controller must cut power
  within it; intervals inside it are not counted as over budget (the controller doc's grace).
- **Time over budget**: the fraction of budgeted, non-settling time whose power exceeds the budget.
- **Energy over budget**: the energy above the budget (sum of ``max(0, P - B) dt``) over the
  energy drawn, both on budgeted, non-settling time.
- **Settling time** of a fall: from the step until power stays at or under
  ``budget x (1 + tolerance_frac)`` up to the next step (or the end of the run; a run that never
  settles counts the whole segment). A fall is ``binding`` when the node drew more than the new
  budget just before it (the controller had to cut power), or power went above the bound at
  some point after it.
- **tok/J**: output tokens over GPU energy, both from the end of the warm-up to the end.
- **QoS**: :func:`pals_core.control.qos.evaluate_window` on consecutive engine snapshots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from pals_core.control.qos import QoSPolicy, WindowQoS, evaluate_window
from pals_core.engine.base import EngineMetrics
from pals_core.errors import ConfigurationError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BudgetMetricsConfig:
    settle_window_s: float = 1.0
    tolerance_frac: float = 0.01
    step_threshold_frac: float = 0.005


@dataclass(frozen=True, slots=True)
class RunSeries:
    """A run's per-tick record. ``budget_w`` is NaN where unconstrained."""

    time_s: FloatArray
    power_w: FloatArray
    energy_j: FloatArray
    budget_w: FloatArray
    tokens: FloatArray

    def __post_init__(self) -> None:
        n = len(self.time_s)
        for field in ("power_w", "energy_j", "budget_w", "tokens"):
            if len(getattr(self, field)) != n:
                raise ConfigurationError(f"series field {field} has a different length than time_s")
        if n < 2:
            raise ConfigurationError("a run series needs at least two samples")
        if np.any(np.diff(self.time_s) <= 0):
            raise ConfigurationError("time_s must be strictly increasing")

    @classmethod
    def from_lists(
        cls,
        time_s: Sequence[float],
        power_w: Sequence[float],
        energy_j: Sequence[float],
        budget_w: Sequence[float | None],
        tokens: Sequence[float],
    ) -> RunSeries:
        return cls(
            time_s=np.asarray(time_s, dtype=float),
            power_w=np.asarray(power_w, dtype=float),
            energy_j=np.asarray(energy_j, dtype=float),
            budget_w=np.asarray([math.nan if b is None else b for b in budget_w], dtype=float),
            tokens=np.asarray(tokens, dtype=float),
        )

    def interval_power_w(self) -> FloatArray:
        return np.diff(self.energy_j) / np.diff(self.time_s)

    def start_index(self, from_s: float) -> int:
        """The first sample at or after ``from_s``."""
        index = int(np.searchsorted(self.time_s, from_s - 1e-9))
        if index >= len(self.time_s) - 1:
            raise ConfigurationError(f"warm-up of {from_s} s leaves no data in the run")
        return index


@dataclass(frozen=True, slots=True)
class EfficiencyMetrics:
    tokens_per_j: float
    throughput_tok_s: float
    mean_power_w: float
    energy_j: float
    tokens: float


def efficiency(series: RunSeries, warmup_s: float) -> EfficiencyMetrics:
    i = series.start_index(warmup_s)
    tokens = float(series.tokens[-1] - series.tokens[i])
    energy_j = float(series.energy_j[-1] - series.energy_j[i])
    duration_s = float(series.time_s[-1] - series.time_s[i])
    return EfficiencyMetrics(
        tokens_per_j=tokens / energy_j if energy_j > 0 else math.nan,
        throughput_tok_s=tokens / duration_s,
        mean_power_w=energy_j / duration_s,
        energy_j=energy_j,
        tokens=tokens,
    )


@dataclass(frozen=True, slots=True)
class BudgetStep:
    time_s: float
    before_w: float | None
    after_w: float
    settling_s: float
    binding: bool


def budget_steps(series: RunSeries, config: BudgetMetricsConfig) -> list[BudgetStep]:
    """Every budget fall, with its settling time (see the module doc)."""
    budget = series.budget_w
    power = series.interval_power_w()
    n_intervals = len(power)
    changes: list[tuple[int, bool]] = []  # (index, is_fall)
    for i in range(n_intervals):
        now, before = budget[i], budget[i - 1] if i > 0 else math.nan
        if math.isnan(now):
            if not math.isnan(before):
                changes.append((i, False))  # the budget is lifted
            continue
        if math.isnan(before):
            changes.append((i, True))
        elif abs(now - before) > config.step_threshold_frac * before:
            changes.append((i, now < before))
    steps = []
    for position, (start, is_fall) in enumerate(changes):
        if not is_fall:
            continue
        end = changes[position + 1][0] if position + 1 < len(changes) else n_intervals
        segment_power = power[start:end]
        segment_budget = budget[start:end]
        with np.errstate(invalid="ignore"):
            outside = ~(segment_power <= segment_budget * (1.0 + config.tolerance_frac))
        over_at = np.flatnonzero(outside)
        if len(over_at) == 0:
            settling_s = 0.0
        else:
            last = start + int(over_at[-1]) + 1  # first interval of the final in-bound stretch
            settling_s = float(series.time_s[last] - series.time_s[start])
        before_w = float(budget[start - 1]) if start > 0 else math.nan
        steps.append(
            BudgetStep(
                time_s=float(series.time_s[start]),
                before_w=None if math.isnan(before_w) else before_w,
                after_w=float(budget[start]),
                settling_s=settling_s,
                binding=len(over_at) > 0 or bool(start > 0 and power[start - 1] > budget[start]),
            )
        )
    return steps


@dataclass(frozen=True, slots=True)
class BudgetMetrics:
    budgeted_s: float
    """Budgeted time counted (settling windows excluded)."""
    time_over_frac: float
    energy_over_frac: float
    steps: tuple[BudgetStep, ...]


def budget_compliance(series: RunSeries, config: BudgetMetricsConfig) -> BudgetMetrics | None:
    """Time and energy over budget outside settling windows; None for an unconstrained run."""
    budget = series.budget_w[:-1]
    if np.all(np.isnan(budget)):
        return None
    power = series.interval_power_w()
    starts = series.time_s[:-1]
    dt = np.diff(series.time_s)
    steps = budget_steps(series, config)
    counted = ~np.isnan(budget)
    for step in steps:
        counted &= ~((starts >= step.time_s) & (starts < step.time_s + config.settle_window_s))
    over_w = np.where(counted, np.maximum(0.0, power - np.nan_to_num(budget)), 0.0)
    budgeted_s = float(np.sum(dt[counted]))
    drawn_j = float(np.sum((power * dt)[counted]))
    time_over_s = float(np.sum(dt[counted & (over_w > 0)]))
    return BudgetMetrics(
        budgeted_s=budgeted_s,
        time_over_frac=time_over_s / budgeted_s if budgeted_s > 0 else 0.0,
        energy_over_frac=float(np.sum(over_w * dt)) / drawn_j if drawn_j > 0 else 0.0,
        steps=tuple(steps),
    )


@dataclass(frozen=True, slots=True)
class QoSMetrics:
    windows: int
    violated: int
    throughput_short: int
    itl_violated: int
    ttft_violated: int = 0

    @property
    def violated_frac(self) -> float:
        return self.violated / self.windows if self.windows else 0.0


def qos_windows(
    snapshots: Sequence[EngineMetrics], target_tok_s: float | None, policy: QoSPolicy
) -> list[WindowQoS]:
    """Judge each window between consecutive snapshots (taken every ``policy.window_s``)."""
    return [
        evaluate_window(before, after, target_tok_s, policy)
        for before, after in pairwise(snapshots)
    ]


def summarize_qos(windows: Sequence[WindowQoS]) -> QoSMetrics:
    return QoSMetrics(
        windows=len(windows),
        violated=sum(w.violated for w in windows),
        throughput_short=sum(w.throughput_short for w in windows),
        itl_violated=sum(w.itl_violated for w in windows),
        ttft_violated=sum(w.ttft_violated for w in windows),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0..100, linear interpolation); NaN for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else math.nan
