"""The PALS controller's configuration, its state machine's states, and the state it carries.

States (``Mode``) and transitions, evaluated at every decision (``decide``) unless noted:

``SAFE_DEFAULT``
    No performance model (no profile for this node yet, or the runtime is profiling). Caps at
    maximum, or the budget's even share when it is lower (proportional cuts); the default batch
    limit. Never guesses an optimum. Leaves only when a controller is built with a model.
``WARMUP``
    A model exists but the offered load is not yet measurable (less than ``warmup_s`` of engine
    snapshots or ``warmup_requests`` finished requests) and no target is set: the safe default
    meanwhile (at full clock the first requests finish soonest).
    -> ``TRACKING``/``DEGRADED`` once it is.
``TRACKING``
    The normal state: the planner found a (cap, batch) that serves the target within the budget
    at the best tokens per joule. -> ``DEGRADED`` when the budget cannot carry the target;
    -> ``FAILSAFE`` on bad measurements or power over budget.
``DEGRADED``
    The target does not fit within the budget (or the budget is below the GPUs' minimum caps):
    maximum throughput within the budget and the ITL SLO, ``qos_risk=True``.
    -> ``TRACKING`` when the target fits again; -> ``FAILSAFE`` as above.
``FAILSAFE``
    Measurements are missing or stale (no valid power/energy reading, engine counters frozen for
    ``stale_after_s``), or measured power exceeded the budget (entered from ``guard``, which cuts
    the caps at once). Caps are held at or below the budget's share and corrections are frozen.
    -> back to planning after ``recover_periods`` consecutive healthy periods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import cast

from pals_core.control.demand import DemandConfig, DemandState
from pals_core.control.qos import QOS_VIOLATION_BUDGET
from pals_core.engine.base import DEFAULT_MAX_NUM_SEQS, Histogram
from pals_core.errors import ConfigurationError


class Mode(StrEnum):
    SAFE_DEFAULT = "safe_default"
    WARMUP = "warmup"
    TRACKING = "tracking"
    DEGRADED = "degraded"
    FAILSAFE = "failsafe"


@dataclass(frozen=True, slots=True)
class PalsConfig:
    """Tuning constants (``docs/controller.md`` explains each choice)."""

    fixed_target_tok_s: float | None = None
    """Serve this throughput whatever the observation's target or the demand (operator override)."""
    target_floor_tok_s: float = 0.0
    """Never plan for less than this throughput (operator floor under the demand estimate)."""
    headroom: float = 0.05
    """Capacity planned above the load, for Poisson bursts and estimation error."""
    itl_slo_margin: float = 0.85
    """Plan against this fraction of the ITL p99 SLO."""
    burst_margin: float = 0.15
    """ITL is planned at the operating concurrency x (1 + burst_margin)."""
    batch_headroom: float = 1.0
    """The batch limit is sized for load x (1 + batch_headroom) where the cap allows it (a limit
    near the running batch queues every burst: a throughput-short window for nothing)."""
    budget_margin_frac: float = 0.02
    budget_margin_w: float = 5.0
    """The caps sum to at most budget - max(frac x budget, W)."""
    default_batch: int = DEFAULT_MAX_NUM_SEQS
    min_batch: int = 8
    max_batch: int | None = None
    """Largest batch limit the planner may choose (None: the largest batch profiled)."""
    correction_tau_s: float = 6.0
    throughput_scale_bounds: tuple[float, float] = (0.6, 1.5)
    power_scale_bounds: tuple[float, float] = (0.7, 1.4)
    itl_window_s: float = 5.0
    itl_setpoint: float = 0.7
    """The edge the ITL loop seeks: completed windows under this x SLO lower the cap offset."""
    itl_trim_high: float = 0.95
    itl_trim_early: float = 1.0
    """A running (unfinished) window raises the offset only once its p99 is over this x SLO."""
    itl_trim_gain_w: float = 300.0
    """Cap offset added per window, per unit of ITL p99 / SLO above ``itl_trim_high``."""
    itl_trim_step_max_w: float = 60.0
    itl_trim_down_gain_w: float = 150.0
    """Cap offset removed per comfortable window, per unit of ITL p99 / SLO under the setpoint."""
    itl_trim_down_max_w: float = 30.0
    itl_trim_bounds_w: tuple[float, float] = (-350.0, 250.0)
    itl_full_push_elasticity: float = 0.5
    """An ITL excess raises the cap fully where the model's ITL falls by at least this x the
    relative cap rise, proportionally less where it falls less."""
    itl_hold_s: float = 15.0
    """After an ITL excess the offset does not come down again for this long."""
    itl_edge_memory_s: float = 120.0
    """... and the cap stays above the cap the excess showed at for this long,"""
    itl_edge_margin_w: float = 10.0
    """... by this margin,"""
    itl_edge_min_elastic: float = 0.7
    """... where the cap elasticity is at least this x ``itl_full_push_elasticity`` (elsewhere an
    excess says little about the caps),"""
    itl_edge_probe_w: float = 20.0
    """... and only for an excess met while probing: the offset at least this far below the plan."""
    itl_min_samples: int = 500
    qos_violation_budget: float = QOS_VIOLATION_BUDGET
    """The fraction of ITL windows PALS may spend over the SLO while it probes for efficiency:
    once its own count of windows over the SLO exceeds this fraction of the windows it has
    seen, the ITL loop stops probing below the plan (the offset is floored at zero; a positive
    one still comes down) until the count falls back within the budget."""
    steady_after_s: float = 1.0
    """Corrections learn only when the knobs have not moved for this long."""
    budget_snap_frac: float = 0.1
    """Under a power budget, a cap within this fraction of the budget's share per GPU becomes the
    share (near the budget the saving is small and the QoS is at stake), and so does any cap
    while the QoS budget is spent and the budget binds (the plan cannot track the demand)."""
    qos_spent_margin_w: float = 50.0
    """With the QoS budget spent under a budget that does not bind (the plan tracks the demand),
    the cap is raised this much over the plan (per GPU), not to the budget's share."""
    qos_guard_step_w: float = 40.0
    """A violated QoS window (the ITL loop's own judgement) raises the QoS guard, a floor over
    the plan for the cap (W per GPU), by up to this much: by the part of it the ITL loop's push
    leaves out (all of it where the model's cap elasticity is ~0, an MoE node's ITL near its
    minimum cap; none where the loop pushes in full), only while the budget leaves room, and
    not after a step was seen to do nothing (:func:`.qos_guard_step_w`, ``_update_qos_guard``:
    a node far slower than its profile breaks every window whatever the cap)."""
    qos_guard_max_w: float = 300.0
    qos_guard_hold_s: float = 120.0
    """The guard does not come down for this long after a violated window,"""
    qos_guard_decay_w: float = 10.0
    """... then by this much per comfortable window (under ``itl_setpoint``, nobody waiting),
    and only while the QoS budget is not spent: the guard steps towards cap-only's behaviour
    (more cap within the budget) on a violation and stays there (hysteresis)."""
    cap_deadband_w: float = 8.0
    switch_margin: float = 0.03
    """Keep the current cap while its predicted power is within this fraction of the best."""
    cap_step_down_w: float = 20.0
    """Largest planned cap decrease per period (budget cuts are not rate-limited)."""
    cap_step_up_w: float = 5.0
    """Largest planned cap increase per period while nobody waits and the ITL holds."""
    batch_deadband_frac: float = 0.1
    batch_shrink_frac: float = 0.15
    """The batch limit grows past a 10 % deadband, shrinks past a 15 % one."""
    trim_ki_per_s: float = 0.08
    trim_max: float = 0.6
    trim_decay_per_s: float = 0.02
    settle_s: float = 0.25
    """A cap change needs this long to show in measured power (the guard waits before cutting
    again)."""
    overdraw_window_s: float = 1.0
    """The guard judges an overdraw on the energy counters over at least this long: one tick's
    energy is noise (a counter that catches up in a burst, a reading's averaging window)."""
    budget_relax_per_s: float = 0.005
    stale_after_s: float = 2.0
    recover_periods: int = 4
    target_fall_per_s: float = 0.01
    """The demand estimate may fall by at most this fraction per second."""
    target_rise_per_s: float = 0.01
    """... and, while no request waits, rise by at most this fraction per second."""
    warmup_s: float = 10.0
    warmup_requests: int = 10
    warmup_max_s: float = 15.0
    warmup_rise_per_s: float = 0.03
    """... and while the demand estimate still rises faster than this fraction per second (the
    engine starts empty: the served rate climbs for about one request lifetime)."""
    """With no target set, hold the safe default for at least ``warmup_s`` and until this many
    requests have finished (but at most ``warmup_max_s``: a nearly idle node must not stay at the
    safe default): the mean output length is learned from finished requests, and the first to
    finish are the short ones."""
    gpu_weight_tau_s: float = 10.0
    gpu_weight_bounds: tuple[float, float] = (0.85, 1.15)
    demand: DemandConfig = field(default_factory=DemandConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.headroom < 1:
            raise ConfigurationError(f"headroom must be within [0, 1), got {self.headroom}")
        if not 0 < self.itl_slo_margin <= 1:
            raise ConfigurationError(
                f"itl_slo_margin must be within (0, 1], got {self.itl_slo_margin}"
            )
        if not 0 <= self.budget_margin_frac < 0.5 or self.budget_margin_w < 0:
            raise ConfigurationError(
                "budget_margin_frac must be within [0, 0.5) and budget_margin_w >= 0"
            )
        if self.default_batch < 1 or self.min_batch < 1:
            raise ConfigurationError("default_batch and min_batch must be >= 1")
        if self.fixed_target_tok_s is not None and not self.fixed_target_tok_s > 0:
            raise ConfigurationError(
                f"fixed_target_tok_s must be > 0 or None, got {self.fixed_target_tok_s}"
            )
        if not 0 <= self.qos_violation_budget < 1:
            raise ConfigurationError(
                f"qos_violation_budget must be within [0, 1), got {self.qos_violation_budget}"
            )
        if not 0 <= self.budget_snap_frac < 1:
            raise ConfigurationError(
                f"budget_snap_frac must be within [0, 1), got {self.budget_snap_frac}"
            )
        if self.target_floor_tok_s < 0:
            raise ConfigurationError("target_floor_tok_s must be >= 0")

    def budget_margin(self, budget_w: float) -> float:
        return max(self.budget_margin_frac * budget_w, self.budget_margin_w)


@dataclass(frozen=True, slots=True)
class PalsState:
    """Everything the controller remembers between calls (immutable; replaced on each call)."""

    mode: Mode
    demand: DemandState = field(default_factory=DemandState)
    throughput_scale: float = 1.0
    power_scale: float = 1.0
    cap_trim_w: float = 0.0
    """ITL feedback: watts per GPU added to the planned cap (negative: the plan's margins were
    more than the measured ITL needs)."""
    load_trim: float = 1.0
    """Integral term on the throughput error (>= 1: plan for more when the queue grows)."""
    budget_scale: float = 1.0
    """Learned cap overdraw: the caps sum to at most (budget - margin) x budget_scale."""
    gpu_weights: tuple[float, ...] = ()
    decide_time_s: float = math.nan
    decide_energy_j: tuple[float, ...] = ()
    overdraw_from_s: float = -math.inf
    overdraw_from_energy_j: tuple[float, ...] = ()
    """Where the guard's overdraw window began (time, energy counters): power is judged on the
    energy over at least ``overdraw_window_s``, never over one tick."""
    running_sum: float = 0.0
    running_n: int = 0
    last_change_s: float = -math.inf
    """When the controller last moved a knob (corrections wait for steady state)."""
    last_cut_s: float = -math.inf
    """When the caps were last cut for the budget (the guard waits for them to act)."""
    metrics_time_s: float = math.nan
    metrics_seen_s: float = math.nan
    """The last engine timestamp seen, and the observation time it last advanced."""
    healthy_periods: int = 0
    itl_ref: Histogram | None = None
    ttft_ref: Histogram | None = None
    itl_ref_time_s: float = math.nan
    """The ITL and TTFT histograms when the ITL loop's window began, and its time."""
    itl_hold_until_s: float = -math.inf
    """No lowering of the ITL offset before this time (set by an excess)."""
    itl_edge_cap_w: float = 0.0
    itl_edge_until_s: float = -math.inf
    """The mean cap at the last ITL excess, and until when it floors the caps."""
    qos_guard_w: float = 0.0
    """The QoS guard: the cap is at least the plan plus this (W per GPU, raised by violations)."""
    qos_guard_until_s: float = -math.inf
    """No lowering of the guard before this time (set by a violation)."""
    qos_guard_step_ratio: float = math.inf
    qos_guard_step_cap_w: float = 0.0
    qos_guard_last_step_w: float = 0.0
    """The last step of the guard not yet judged: the ITL p99 / SLO that caused it, the mean
    cap then, and its size (inf ratio: none pending)."""
    qos_guard_futile_until_s: float = -math.inf
    """A step of the guard was seen to do nothing: no step before this time."""
    budget_share_bound_w: float = math.inf
    """The budget's share per GPU when it bound the cap at the last decision (the plan wanted
    at least the share, or could not track the demand under it); +inf when it did not."""
    qos_windows_seen: int = 0
    qos_windows_violated: int = 0
    """The ITL windows the loop has judged, and those over the SLO (the QoS budget's ledger)."""
    target_tok_s: float = math.nan
    """The target of the last plan (for logs)."""
    warmup_estimate_tok_s: float = math.nan
    """The demand estimate at the last decision (the warm-up lasts while it still climbs)."""
    started_s: float = math.nan
    """The time of the first decision (the demand estimate needs ``warmup_s`` of data)."""

    @property
    def cap_offset_w(self) -> float:
        """The cap over the plan (W per GPU): the ITL loop's offset, floored at the QoS guard
        while the guard is up."""
        return max(self.cap_trim_w, self.qos_guard_w) if self.qos_guard_w > 0 else self.cap_trim_w


def _slot_copier(cls: type) -> Callable[[object], object]:
    """A function that returns a new ``cls`` holding the same field values as its argument: one
    straight-line statement per field, each storing through the field's slot descriptor (what
    ``dataclasses`` does for ``__init__``: generated code). Twice as fast as a loop over the
    field names with ``getattr`` and ``object.__setattr__``."""
    names = [f.name for f in fields(cls)]
    env: dict[str, object] = {"_new": object.__new__, "_cls": cls}
    env.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    _set_{name}(new, old.{name})\n" for name in names)
    exec(f"def copy(old):\n    new = _new(_cls)\n{body}    return new\n", env)
    return cast("Callable[[object], object]", env["copy"])


_copy_state = _slot_copier(PalsState)
_set_slot = object.__setattr__


def evolve(state: PalsState, /, **changes: object) -> PalsState:
    """``dataclasses.replace(state, **changes)``, the same new state at a quarter of the cost: it
    copies the fields directly (:func:`_slot_copier`) instead of calling ``__init__`` with every
    one of them as keywords (``PalsState`` has no ``__post_init__`` and no ``init=False`` field,
    so nothing is lost). The controller replaces its state several times per tick, on every node
    of a fleet. An unknown field name raises ``AttributeError``."""
    new = _copy_state(state)
    for name, value in changes.items():
        _set_slot(new, name, value)
    return cast(PalsState, new)
