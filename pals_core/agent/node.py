"""One node under the agent: its GPUs, engine and controller, ticked by the agent's clock.

Each tick (``LoopConfig.tick_s``) :meth:`NodeControl.tick` asks the :class:`BudgetFollower` for
the budget (look-ahead, no-limit, failsafe), observes the node, lets the policy guard (every tick)
or decide (every period), applies what it returns (clamped, written only on change), and feeds
the :class:`TelemetryRecorder`. The network side (stream, telemetry, registration) runs elsewhere
and meets this object only through :meth:`accept_trajectory`, :meth:`contact` and
:meth:`take_samples`, under one lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pals_core.agent.telemetry import TelemetryRecorder, TelemetrySample
from pals_core.agent.trajectory import Budget, BudgetFollower, BudgetSource, Trajectory
from pals_core.control.policy import Policy
from pals_core.control.runtime import LoopConfig, apply_action, observe
from pals_core.device.gpu import GPUGroup
from pals_core.engine.base import DEFAULT_MAX_NUM_SEQS, ServingEngine
from pals_core.model.performance import PerformanceModel

CURVE_POINTS = 12


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What the node registers with the gateway (``POST /v1/nodes``)."""

    name: str
    gpu_type: str
    gpu_count: int
    gpu_min_cap_w: float
    gpu_max_cap_w: float
    curve: tuple[tuple[float, float], ...] = ()
    """Power-to-throughput from the PALS profile; empty: the gateway's documented linear
    default (no profile)."""
    stock_curve: tuple[tuple[float, float], ...] = ()
    """``[(tok_s, power_w), ...]`` at vLLM's stock configuration, from the PALS profile
    (:func:`stock_curve_from_model`); empty: none sent (no profile), and the gateway's reports
    use their documented approximate line."""

    @property
    def min_power_w(self) -> float:
        return self.gpu_count * self.gpu_min_cap_w

    @property
    def max_power_w(self) -> float:
        return self.gpu_count * self.gpu_max_cap_w

    def registration(self) -> dict[str, object]:
        body: dict[str, object] = {
            "name": self.name,
            "gpu_type": self.gpu_type,
            "gpu_count": self.gpu_count,
            "gpu_min_cap_w": self.gpu_min_cap_w,
            "gpu_max_cap_w": self.gpu_max_cap_w,
            "curve": [list(p) for p in self.curve],
        }
        if self.stock_curve:
            body["stock_curve"] = [list(p) for p in self.stock_curve]
        return body


def curve_from_model(
    model: PerformanceModel, points: int = CURVE_POINTS
) -> list[tuple[float, float]]:
    """The node's saturated throughput against its GPU power, at caps spread over the model's
    range and the largest batch: ``[(power_w, tok_s), ...]`` with strictly increasing power and
    non-decreasing throughput (what the gateway's allocator takes)."""
    lo, hi = model.min_cap_w, model.max_cap_w
    curve: list[tuple[float, float]] = []
    for i in range(points):
        cap_w = lo + (hi - lo) * i / (points - 1)
        p = model.predict(cap_w, model.max_batch)
        power_w, tok_s = round(p.power_w, 1), round(p.throughput_tok_s, 1)
        if curve and power_w <= curve[-1][0]:
            continue
        curve.append((power_w, max(tok_s, curve[-1][1]) if curve else tok_s))
    return curve if len(curve) >= 2 else []


def stock_curve_from_model(
    model: PerformanceModel,
    stock_cap_w: float,
    stock_batch: int = DEFAULT_MAX_NUM_SEQS,
    points: int = CURVE_POINTS,
) -> list[tuple[float, float]]:
    """The node's GPU power against the load it serves at vLLM's stock configuration (every GPU
    at its default cap ``stock_cap_w``, batch limit ``stock_batch``): ``[(tok_s, power_w), ...]``
    with strictly increasing throughput, what the gateway's reports take as ``stock_curve``.

    A stock engine serving a load under its capacity runs the batch at which its saturated
    throughput meets that load, so the curve is the model's saturated (throughput, power) at
    the stock cap over batches from 1 to ``stock_batch`` (log-spaced). Below the first point the
    reports hold its power (the model holds power below the smallest profiled batch)."""
    top = max(1, min(stock_batch, model.max_batch))
    curve: list[tuple[float, float]] = []
    for i in range(points):
        batch = top ** (i / (points - 1))
        p = model.predict(stock_cap_w, batch)
        tok_s, power_w = round(p.throughput_tok_s, 1), round(p.power_w, 1)
        if curve and tok_s <= curve[-1][0]:
            continue
        curve.append((tok_s, max(power_w, curve[-1][1]) if curve else power_w))
    return curve if len(curve) >= 2 else []


def node_spec(name: str, gpus: GPUGroup, model: PerformanceModel | None) -> NodeSpec:
    """What the node registers; ``model`` None (no profile): no curves (the gateway's
    documented defaults)."""
    limits = [g.power_limit_constraints() for g in gpus]
    stock_cap_w = min(c.default_w for c in limits)
    return NodeSpec(
        name=name,
        gpu_type=gpus[0].name,
        gpu_count=len(gpus),
        gpu_min_cap_w=max(c.min_w for c in limits),
        gpu_max_cap_w=min(c.max_w for c in limits),
        curve=tuple(curve_from_model(model)) if model is not None else (),
        stock_curve=tuple(stock_curve_from_model(model, stock_cap_w)) if model is not None else (),
    )


@dataclass
class NodeStatus:
    """The latest tick, for /metrics and the logs."""

    budget: Budget | None = None
    power_w: float = 0.0
    power_limits_w: tuple[float, ...] = ()
    batch_limit: int = 0
    state: str = ""
    qos_risk: bool = False
    qos_windows: int = 0
    qos_violations: int = 0
    version_id: int | None = None
    rejected_trajectories: int = 0
    stream_connected: bool = False
    buffered_samples: int = 0
    dropped_samples: int = 0


class NodeControl:
    """A node's control loop, one tick at a time (see the module doc).

    ``decide_phase``: the policy decides on the ticks ``k`` (counted from 0 at the node's first
    tick) with ``(k + decide_phase) % ticks_per_period == 0``. 0 (one node): at the first tick
    and every period after. A fleet gives its nodes different phases so that their decisions,
    the costly part of a tick, spread over the ticks of a period instead of all landing on one.
    """

    def __init__(
        self,
        spec: NodeSpec,
        gpus: GPUGroup,
        engine: ServingEngine,
        policy: Policy,
        follower: BudgetFollower,
        recorder: TelemetryRecorder,
        config: LoopConfig | None = None,
        decide_phase: int = 0,
    ) -> None:
        self.spec = spec
        self.gpus = gpus
        self.engine = engine
        self.policy = policy
        self.follower = follower
        self.recorder = recorder
        self.config = config or LoopConfig()
        self.status = NodeStatus()
        self.node_id: int | None = None
        self._lock = threading.Lock()
        self._ticks = decide_phase % self.config.ticks_per_period
        """Ticks so far, plus the phase: the policy decides when a multiple of the period."""
        self._start_s: float | None = None

    # -- the network side ---------------------------------------------------------------------

    def accept_trajectory(
        self, trajectory: Trajectory, wall_s: float, *, any_version: bool = False
    ) -> bool:
        with self._lock:
            taken = self.follower.accept(trajectory, wall_s, any_version=any_version)
            if taken:
                self.status.version_id = trajectory.version_id
            return taken

    def contact(self, wall_s: float) -> None:
        with self._lock:
            self.follower.contact(wall_s)

    def take_samples(self) -> list[TelemetrySample]:
        with self._lock:
            return self.recorder.take()

    # -- the control side ---------------------------------------------------------------------

    def tick(self, mono_s: float, wall_s: float, counters_wall_s: float | None = None) -> None:
        """One tick at monotonic time ``mono_s`` (the loop's clock) and UTC ``wall_s``;
        ``counters_wall_s``: when the GPUs' energy counters were last refreshed, if known (the
        telemetry's power is their energy over the time they cover)."""
        if self._start_s is None:
            self._start_s = mono_s
        elapsed_s = mono_s - self._start_s
        with self._lock:
            budget = self.follower.budget(wall_s)
        obs = observe(elapsed_s, self.gpus, self.engine, budget.power_w, None)
        decided = self._ticks % self.config.ticks_per_period == 0
        self._ticks += 1
        action = self.policy.decide(obs) if decided else self.policy.guard(obs)
        status = self.status
        limits_w, batch_limit = tuple(g.power_limit_w for g in obs.gpus), obs.batch_limit
        if action is not None:
            apply_action(action, self.gpus, self.engine)
            status.state = action.state or status.state
            status.qos_risk = action.qos_risk
            if action.power_limits_w is not None:  # read back only what may have changed
                limits_w = tuple(self.gpus.get_power_limits_w())
            if action.batch_limit is not None:
                batch_limit = self.engine.get_batch_limit()
        status.budget = budget
        status.power_w = obs.total_power_w
        status.power_limits_w = limits_w
        status.batch_limit = batch_limit
        with self._lock:
            verdict = self.recorder.record(
                wall_s,
                energy_j=sum(g.energy_j for g in obs.gpus),
                metrics=obs.metrics,
                power_limits_w=status.power_limits_w,
                batch_limit=status.batch_limit,
                mode=self.mode(),
                energy_wall_s=counters_wall_s,
            )
        if verdict is not None:
            status.qos_windows += 1
            status.qos_violations += int(verdict)

    def mode(self) -> str:
        """The controller's state, qualified by where the budget came from."""
        budget = self.status.budget
        state = self.status.state or "starting"
        if budget is None:
            return state
        if budget.infeasible:
            return f"{state}/infeasible"
        if budget.source in (BudgetSource.FAILSAFE, BudgetSource.UNCONSTRAINED):
            return f"{state}/{budget.source.value}"
        return state
