"""Run one controller on one scenario in the simulator, and measure it.

Everything a controller can know comes through the runtime loop (GPUGroup, ServingEngine,
Observation). The runner alone reads the scenario's ground truth (the node's saturated capacity,
to set the offered load), exactly as an experimenter would; no controller sees it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pals_core.control.baselines import (
    BatchOnlyConfig,
    BatchOnlyPolicy,
    CapOnlyPolicy,
    FixedPolicy,
    StockPolicy,
)
from pals_core.control.cap_latency import CapLatencyPolicy
from pals_core.control.policy import Policy
from pals_core.control.qos import QoSPolicy, WindowQoS
from pals_core.control.runtime import LoopConfig, Sample, run_control_loop
from pals_core.engine.base import EngineMetrics
from pals_core.errors import ConfigurationError
from pals_core.experiments.metrics import (
    BudgetMetricsConfig,
    RunSeries,
    budget_compliance,
    efficiency,
    qos_windows,
    summarize_qos,
)
from pals_core.experiments.scenarios import (
    CONTROLLERS,
    DEVICE_VARIATION_FRAC,
    NOISE_FRAC,
    SEARCHED,
    Scenario,
)
from pals_core.experiments.simnode import SimNodeHandle, build_node

LOOP = LoopConfig(period_s=0.5, tick_s=0.1)
BUDGET_METRICS = BudgetMetricsConfig()
SERIES_STEP_S = 1.0
"""Resolution of the power/budget series kept for plots (dynamic runs only)."""


@dataclass(frozen=True, slots=True)
class FixedConfig:
    cap_w: float
    batch_limit: int


@dataclass(slots=True)
class RunResult:
    """One controller on one scenario and seed: the figures, and a thin series for plots."""

    scenario: str
    node: str
    model: str
    load_frac: float
    budget: str
    budget_kind: str
    seed: int
    controller: str
    duration_s: float
    warmup_s: float
    offered_tok_s: float
    capacity_tok_s: float
    max_power_w: float
    itl_slo_s: float
    ttft_slo_s: float
    physics: str
    slo: str
    stock_batch: int
    tokens_per_j: float
    throughput_tok_s: float
    mean_power_w: float
    peak_power_w: float
    """Highest interval power (0.1 s) over the whole run."""
    qos_windows: int
    qos_violated: int
    qos_throughput_short: int
    qos_itl_violated: int
    qos_ttft_violated: int
    qos_violated_frac: float
    qos_risk_frac: float
    """The fraction of ticks after the warm-up at which the controller flagged a QoS risk (for
    batch-only: that no batch limit keeps the budget)."""
    budget_time_over_frac: float | None
    budget_energy_over_frac: float | None
    budget_falls: int
    settling_s: list[float]
    """Settling times of the binding budget falls."""
    settling_all_s: list[float]
    fixed_config: dict[str, float] | None
    wall_s: float
    series: dict[str, list[float | None]] | None = field(default=None)
    window_itl_p99_s: list[float] | None = field(default=None)
    """Each QoS window's ITL p99 (``keep_windows``: for what-if sweeps, not stored)."""
    window_qos: list[WindowQoS] | None = field(default=None)
    """Each QoS window's verdict (``keep_windows``: for diagnostics, not stored)."""

    def to_dict(self, with_series: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data.pop("window_itl_p99_s")
        data.pop("window_qos")
        if not with_series:
            data.pop("series")
        return {k: _json_safe(v) for k, v in data.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


PolicyFactory = Callable[[SimNodeHandle], Policy]


def make_policy(
    controller: str,
    node: SimNodeHandle,
    *,
    fixed: FixedConfig | None = None,
    profile_path: Path | None = None,
    pals_overrides: Mapping[str, Any] | None = None,
) -> Policy:
    """The policy called ``controller`` for ``node`` (every baseline at stock's batch limit)."""
    qos = qos_policy(node)
    if controller == "stock":
        return StockPolicy(node.stock_batch)
    if controller == "cap-only":
        return CapOnlyPolicy(batch_limit=node.stock_batch)
    if controller == "cap-latency":
        return CapLatencyPolicy(qos, batch_limit=node.stock_batch)
    if controller == "batch-only":
        return BatchOnlyPolicy(BatchOnlyConfig(max_batch=node.stock_batch))
    if controller in SEARCHED:
        if fixed is None:
            raise ConfigurationError(f"{controller} needs the configuration found by the search")
        return FixedPolicy(fixed.cap_w, fixed.batch_limit, name=controller)
    if controller == "pals":
        if profile_path is None:
            raise ConfigurationError("pals needs a profile (profile_path)")
        from pals_core.experiments.pals_adapter import build_pals

        return build_pals(
            profile_path,
            node=node.identity,
            itl_slo_s=qos.itl_p99_slo_s,
            ttft_slo_s=qos.ttft_p99_slo_s,
            default_batch=node.stock_batch,
            overrides=pals_overrides,
        )
    raise ConfigurationError(
        f"unknown controller {controller!r}; allowed: {', '.join(CONTROLLERS)}"
    )


def qos_policy(node: SimNodeHandle) -> QoSPolicy:
    """The QoS definition of the node's SLO (the same for every controller)."""
    return QoSPolicy(itl_p99_slo_s=node.slo.tpot_p99_s, ttft_p99_slo_s=node.slo.ttft_p99_s)


def run_scenario(
    scenario: Scenario,
    controller: str,
    *,
    fixed: FixedConfig | None = None,
    profile_path: Path | None = None,
    keep_series: bool = False,
    policy: Policy | None = None,
    pals_overrides: Mapping[str, Any] | None = None,
    keep_windows: bool = False,
) -> RunResult:
    """Run ``controller`` (or an explicit ``policy``) for the scenario's duration and measure."""
    wall_start = time.perf_counter()
    node = build_node(
        scenario.node,
        load_frac=scenario.load_frac,
        seed=scenario.seed,
        device_variation_frac=DEVICE_VARIATION_FRAC,
        noise_frac=NOISE_FRAC,
        physics=scenario.physics,
        slo=scenario.slo,
        device_speed=scenario.device_speed,
        device_power=scenario.device_power,
    )
    if policy is None:
        policy = make_policy(
            controller, node, fixed=fixed, profile_path=profile_path, pals_overrides=pals_overrides
        )
    trace = scenario.budget_trace()
    max_power_w = node.max_power_w

    def budget_w(t: float) -> float | None:
        return None if trace is None else trace.frac_at(t) * max_power_w

    qos = qos_policy(node)
    recorder = _Recorder(node, scenario.warmup_s, qos.window_s)
    run_control_loop(
        policy,
        node.gpus,
        node.engine,
        node.clock,
        duration_s=scenario.duration_s,
        budget_w=budget_w,
        config=LOOP,
        on_sample=recorder.on_sample,
    )
    recorder.close(scenario.duration_s, budget_w(scenario.duration_s))
    series = recorder.series()
    eff = efficiency(series, scenario.warmup_s)
    windows = qos_windows(recorder.snapshots, node.offered_tok_s, qos)
    verdict = summarize_qos(windows)
    after_warmup = [x for x in recorder.samples if x.time_s >= scenario.warmup_s]
    budget = budget_compliance(series, BUDGET_METRICS)
    steps = budget.steps if budget is not None else ()
    return RunResult(
        **_identity_fields(scenario, node),
        controller=controller,
        tokens_per_j=eff.tokens_per_j,
        throughput_tok_s=eff.throughput_tok_s,
        mean_power_w=eff.mean_power_w,
        peak_power_w=float(series.interval_power_w().max()),
        qos_windows=verdict.windows,
        qos_violated=verdict.violated,
        qos_throughput_short=verdict.throughput_short,
        qos_itl_violated=verdict.itl_violated,
        qos_ttft_violated=verdict.ttft_violated,
        qos_violated_frac=verdict.violated_frac,
        qos_risk_frac=sum(x.qos_risk for x in after_warmup) / max(1, len(after_warmup)),
        budget_time_over_frac=None if budget is None else budget.time_over_frac,
        budget_energy_over_frac=None if budget is None else budget.energy_over_frac,
        budget_falls=len(steps),
        settling_s=[s.settling_s for s in steps if s.binding],
        settling_all_s=[s.settling_s for s in steps],
        fixed_config=None if fixed is None else {"cap_w": fixed.cap_w, "batch": fixed.batch_limit},
        wall_s=time.perf_counter() - wall_start,
        series=recorder.thin_series(SERIES_STEP_S) if keep_series else None,
        window_itl_p99_s=[w.itl_p99_s for w in windows] if keep_windows else None,
        window_qos=windows if keep_windows else None,
    )


def _identity_fields(scenario: Scenario, node: SimNodeHandle) -> dict[str, Any]:
    """What a run record says about its scenario and node (the same for every controller)."""
    return {
        "scenario": scenario.key,
        "node": scenario.node.key,
        "model": scenario.node.model,
        "load_frac": scenario.load_frac,
        "budget": scenario.budget_label,
        "budget_kind": scenario.budget_kind,
        "seed": scenario.seed,
        "duration_s": scenario.duration_s,
        "warmup_s": scenario.warmup_s,
        "offered_tok_s": node.offered_tok_s,
        "capacity_tok_s": node.capacity_tok_s,
        "max_power_w": node.max_power_w,
        "itl_slo_s": node.itl_slo_s,
        "ttft_slo_s": node.slo.ttft_p99_s,
        "physics": scenario.physics,
        "slo": scenario.slo,
        "stock_batch": node.stock_batch,
    }


class _Recorder:
    """Collects the loop's samples, and an engine snapshot at every QoS window boundary."""

    def __init__(self, node: SimNodeHandle, warmup_s: float, window_s: float) -> None:
        self._node = node
        self._next_window_s = warmup_s
        self._window_s = window_s
        self.samples: list[Sample] = []
        self.snapshots: list[EngineMetrics] = []

    def on_sample(self, sample: Sample) -> None:
        self.samples.append(sample)
        if sample.time_s >= self._next_window_s - 1e-6:
            self.snapshots.append(self._node.engine.metrics())
            self._next_window_s += self._window_s

    def close(self, end_s: float, budget_w: float | None) -> None:
        """Record the state at the end of the last tick (the loop stops before observing it)."""
        last = self.samples[-1]
        metrics = self._node.engine.metrics()
        gpus = self._node.gpus
        self.samples.append(
            Sample(
                time_s=end_s,
                power_w=sum(gpus.get_power_w()),
                energy_j=sum(gpus.get_energy_j()),
                power_budget_w=budget_w,
                throughput_target_tok_s=None,
                generation_tokens_total=metrics.generation_tokens_total,
                power_limits_w=tuple(gpus.get_power_limits_w()),
                batch_limit=self._node.engine.get_batch_limit(),
                state=last.state,
                qos_risk=last.qos_risk,
                decided=False,
            )
        )
        if end_s >= self._next_window_s - 1e-6:
            self.snapshots.append(metrics)

    def series(self) -> RunSeries:
        s = self.samples
        return RunSeries.from_lists(
            [x.time_s for x in s],
            [x.power_w for x in s],
            [x.energy_j for x in s],
            [x.power_budget_w for x in s],
            [float(x.generation_tokens_total) for x in s],
        )

    def thin_series(self, step_s: float) -> dict[str, list[float | None]]:
        out: dict[str, list[float | None]] = {
            "time_s": [],
            "power_w": [],
            "budget_w": [],
            "cap_sum_w": [],
            "batch_limit": [],
        }
        next_s = step_s
        prev: Sample | None = None
        for x in self.samples:
            if x.time_s >= next_s - 1e-9 and prev is not None:
                dt = x.time_s - prev.time_s
                out["time_s"].append(x.time_s)
                out["power_w"].append((x.energy_j - prev.energy_j) / dt if dt > 0 else None)
                out["budget_w"].append(x.power_budget_w)
                out["cap_sum_w"].append(sum(x.power_limits_w))
                out["batch_limit"].append(float(x.batch_limit))
                next_s += step_s
            prev = x
        return out
