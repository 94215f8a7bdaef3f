"""What a budget is computed from: the planning window, the baseline, the events as the
planner sees them, and the nodes with their demand estimated from recent telemetry."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gridlink.budgets import repository
from gridlink.core.allocator import NodeSpec
from gridlink.core.curves import fit_to_range
from gridlink.core.planner import (
    BaselinePolicy,
    PlannerEvent,
    PlannerInterval,
    Segment,
    plan_facility_budget,
)
from gridlink.core.trajectory import NodeLimit
from gridlink.curtailments import repository as events_repository
from gridlink.models.event import Event, SignalKind
from gridlink.nodes import repository as nodes_repository
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import repository as telemetry_repository
from gridlink.telemetry import service as telemetry_service

LOOKBACK = timedelta(hours=1)
# Numbers from telemetry are quantised so that measurement noise does not mint new versions.
DEMAND_QUANTUM_W = 50.0
BASELINE_QUANTUM_KW = 0.1
PRESSING_FRAC = 0.95


def planning_window(now: datetime, settings: GridlinkSettings) -> tuple[datetime, datetime]:
    return now - LOOKBACK, now + timedelta(hours=settings.planning_horizon_h)


def baseline_policy(
    session: Session, *, now: datetime, settings: GridlinkSettings
) -> BaselinePolicy:
    """Fixed: ``baseline_fixed_kw``, by default what the registered fleet can draw (see
    :func:`default_fixed_baseline_kw`). Measured: the average facility power over
    ``baseline_window_min`` (falls back to the fixed figure without telemetry).

    A measured baseline is frozen while an event has been in force during its window: power
    measured during a curtailment is the curtailed power, and a percentage reduction taken from
    it would ratchet the limit down. The last version's baseline is reused instead.
    """
    fixed_kw = default_fixed_baseline_kw(session, settings)
    if settings.baseline_mode == "fixed":
        return BaselinePolicy("fixed", fixed_kw=fixed_kw)
    window_start = now - timedelta(minutes=settings.baseline_window_min)
    recent = events_repository.planning_events(session, start=window_start, end=now)
    if any(
        i.start_at < now and i.start_at + timedelta(seconds=i.duration_s) > window_start
        for event in recent
        for i in event.intervals
    ):
        latest = repository.latest_version(session)
        frozen = None if latest is None else latest.inputs.get("baseline", {}).get("measured_kw")
        if frozen is not None:
            return BaselinePolicy("measured", fixed_kw=fixed_kw, measured_kw=float(frozen))
    measured = telemetry_service.measured_facility_kw(
        session,
        now=now,
        window_s=settings.baseline_window_min * 60.0,
        overhead_kw=settings.facility_overhead_kw,
    )
    if measured is None:
        measured = fixed_kw
    measured = round(round(measured / BASELINE_QUANTUM_KW) * BASELINE_QUANTUM_KW, 6)
    return BaselinePolicy("measured", fixed_kw=fixed_kw, measured_kw=measured)


def default_fixed_baseline_kw(session: Session, settings: GridlinkSettings) -> float:
    """``baseline_fixed_kw`` when set; otherwise the most the registered, not-offline fleet can
    draw plus the overhead, capped at ``facility_max_kw`` (a 30 % reduction then takes 30 % off
    what this fleet can draw, not off a facility maximum it never reaches); ``facility_max_kw``
    before any node registers."""
    if settings.baseline_fixed_kw is not None:
        return settings.baseline_fixed_kw
    from gridlink.curtailments.advice import fleet_max_kw

    fleet_kw = fleet_max_kw(session, overhead_kw=settings.facility_overhead_kw)
    if fleet_kw is None:
        return settings.facility_max_kw
    fitted = min(settings.facility_max_kw, fleet_kw)
    return round(round(fitted / BASELINE_QUANTUM_KW) * BASELINE_QUANTUM_KW, 6)


def planner_events(events: Sequence[Event]) -> list[PlannerEvent]:
    return [
        PlannerEvent(
            event_id=event.id,
            priority=event.priority,
            intervals=[
                PlannerInterval(
                    start=i.start_at,
                    end=i.start_at + timedelta(seconds=i.duration_s),
                    kind=i.signal_kind.value,
                    value=i.value,
                )
                for i in event.intervals
                if i.node_id is None  # node limits: node_limits, not the facility
            ],
        )
        for event in events
    ]


def node_limits(events: Sequence[Event], specs: Sequence[NodeSpec]) -> list[NodeLimit]:
    """Intervals targeted at one node -> that node's maximum while they last: ``limit_kw`` as
    such, a reduction (kW or %) from the node's maximum power; never below 0."""
    max_w = {spec.node_id: spec.max_w for spec in specs}
    limits = []
    for event in events:
        for i in event.intervals:
            if i.node_id is None or i.node_id not in max_w:
                continue
            top_w = max_w[i.node_id]
            if i.signal_kind is SignalKind.LIMIT_KW:
                limit_w = i.value * 1000.0
            elif i.signal_kind is SignalKind.REDUCTION_KW:
                limit_w = top_w - i.value * 1000.0
            else:
                limit_w = top_w * (1.0 - i.value / 100.0)
            end = i.start_at + timedelta(seconds=i.duration_s)
            limits.append(NodeLimit(i.node_id, i.start_at, end, max(0.0, limit_w)))
    return limits


def plan(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    baseline: BaselinePolicy,
    settings: GridlinkSettings,
) -> tuple[list[Segment], list[Event]]:
    events = events_repository.planning_events(session, start=start, end=end)
    segments = plan_facility_budget(
        planner_events(events),
        window_start=start,
        window_end=end,
        baseline=baseline,
        facility_max_kw=settings.facility_max_kw,
        overhead_kw=settings.facility_overhead_kw,
    )
    return segments, events


Fitted = tuple[tuple[float, float], ...]
CurveKey = tuple[str, float, float]


def _curve(
    curve_json: str, min_w: float, max_w: float, cache: dict[tuple[str, float, float], Fitted]
) -> Fitted:
    """The node's curve fitted to its power range; nodes of one model share it (``cache``)."""
    key = (curve_json, min_w, max_w)
    fitted = cache.get(key)
    if fitted is None:
        curve = json.loads(curve_json)
        if len(curve) < 2 or max_w <= min_w:
            fitted = ()
        else:
            fitted = fit_to_range([(p, t) for p, t in curve], min_w, max_w)
        cache[key] = fitted
    return fitted


def node_specs(session: Session, *, now: datetime, settings: GridlinkSettings) -> list[NodeSpec]:
    """Every node not offline, with a demand estimate from its recent telemetry.

    A node with no queue and no QoS violation in ``demand_window_s`` whose recent maximum power
    stayed under ``demand_underuse_frac`` of its current allocation cannot use its share: its
    demand becomes that maximum times ``demand_headroom`` (rounded up to 50 W), and the
    allocator gives the rest to others. Hysteresis keeps it there: a node that already had a
    demand keeps one (re-estimated) until its power presses against its allocation (reaches
    ``PRESSING_FRAC`` of it); then it gets a full share back, and a new demand later if it still
    stays well under.
    """
    latest = repository.latest_version(session)
    current = {} if latest is None else repository.allocations_at(session, latest.id, now)
    previous_demand = (
        {} if latest is None else {n["id"]: n.get("demand_w") for n in latest.inputs["nodes"]}
    )
    stats = {
        s.node_id: s
        for s in telemetry_repository.window_stats(
            session, since=now - timedelta(seconds=settings.demand_window_s), until=now
        )
    }
    specs = []
    fitted: dict[CurveKey, Fitted] = {}
    heard_since = now - timedelta(seconds=settings.node_offline_after_s)  # not offline
    for node_id, min_w, max_w, tier, curve in nodes_repository.planning_rows(
        session, heard_since=heard_since
    ):
        demand_w = None
        stat = stats.get(node_id)
        allocated = current.get(node_id)
        if (
            stat is not None
            and allocated is not None
            and not stat.max_requests_waiting
            and stat.qos_violations == 0
        ):
            estimate = stat.power_w_max * settings.demand_headroom
            estimate = math.ceil(estimate / DEMAND_QUANTUM_W) * DEMAND_QUANTUM_W
            entering = stat.power_w_max < settings.demand_underuse_frac * allocated
            pressing = stat.power_w_max >= PRESSING_FRAC * allocated
            staying = previous_demand.get(node_id) is not None and not pressing
            if entering or staying:
                demand_w = estimate
        specs.append(
            NodeSpec(
                node_id=node_id,
                min_w=min_w,
                max_w=max_w,
                tier=tier,
                curve=_curve(curve, min_w, max_w, fitted),
                demand_w=demand_w,
            )
        )
    return specs
