"""Budget recomputation: events + nodes + telemetry -> planner -> allocator -> a stored version.

``recompute_budget`` plans over ``[now - 1 h, now + planning_horizon_h)`` and stores a new
:class:`BudgetVersion` (with its reason, its inputs and per-node allocation segments) only when
the result differs from the latest version over the time they share from ``now`` on: the window
slides with ``now``, so a recompute at an event boundary that changes nothing stores nothing.
Every number that comes from telemetry is quantised (baseline to 0.1 kW, demand to 50 W) so
that measurement noise does not mint a new version every time. Never commits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gridlink.budgets import repository
from gridlink.budgets.schemas import (
    AllocationSegment,
    BudgetVersionOut,
    BudgetVersionSummary,
    EventRef,
    NodeTrajectory,
    Timeline,
    TimelineSegment,
)
from gridlink.core.allocator import NodeSpec
from gridlink.core.curves import fit_to_range
from gridlink.core.planner import (
    BaselinePolicy,
    PlannerEvent,
    PlannerInterval,
    Segment,
    plan_facility_budget,
)
from gridlink.core.trajectory import allocate_segments
from gridlink.curtailments import repository as events_repository
from gridlink.errors import InvalidInputError, NotFoundError
from gridlink.models.budget import BudgetVersion, NodeAllocation
from gridlink.models.event import Event
from gridlink.models.node import Node, NodeStatus
from gridlink.nodes import repository as nodes_repository
from gridlink.nodes import service as nodes_service
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import repository as telemetry_repository
from gridlink.telemetry import service as telemetry_service

LOOKBACK = timedelta(hours=1)
DEMAND_QUANTUM_W = 50.0
BASELINE_QUANTUM_KW = 0.1
PRESSING_FRAC = 0.95

# -- inputs -----------------------------------------------------------------------------------


def planning_window(now: datetime, settings: GridlinkSettings) -> tuple[datetime, datetime]:
    return now - LOOKBACK, now + timedelta(hours=settings.planning_horizon_h)


def baseline_policy(
    session: Session, *, now: datetime, settings: GridlinkSettings
) -> BaselinePolicy:
    """Fixed: ``baseline_fixed_kw`` (default facility_max_kw). Measured: the average facility
    power over ``baseline_window_min`` (falls back to the fixed figure without telemetry).

    A measured baseline is frozen while an event has been in force during its window: power
    measured during a curtailment is the curtailed power, and a percentage reduction taken from
    it would ratchet the limit down. The last version's baseline is reused instead.
    """
    fixed_kw = settings.effective_baseline_fixed_kw
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


def _planner_events(events: Sequence[Event]) -> list[PlannerEvent]:
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
            ],
        )
        for event in events
    ]


def _plan(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    baseline: BaselinePolicy,
    settings: GridlinkSettings,
) -> tuple[list[Segment], list[Event]]:
    events = events_repository.planning_events(session, start=start, end=end)
    segments = plan_facility_budget(
        _planner_events(events),
        window_start=start,
        window_end=end,
        baseline=baseline,
        facility_max_kw=settings.facility_max_kw,
        overhead_kw=settings.facility_overhead_kw,
    )
    return segments, events


def _curve(node: Node) -> tuple[tuple[float, float], ...]:
    if len(node.curve) < 2 or node.max_power_w <= node.min_power_w:
        return ()
    return fit_to_range([(p, t) for p, t in node.curve], node.min_power_w, node.max_power_w)


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
    for node in nodes_repository.list_all(session):
        if nodes_service.status_at(node, now, settings) is NodeStatus.OFFLINE:
            continue
        demand_w = None
        stat = stats.get(node.id)
        allocated = current.get(node.id)
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
            staying = previous_demand.get(node.id) is not None and not pressing
            if entering or staying:
                demand_w = estimate
        specs.append(
            NodeSpec(
                node_id=node.id,
                min_w=node.min_power_w,
                max_w=node.max_power_w,
                tier=node.flexibility_tier,
                curve=_curve(node),
                demand_w=demand_w,
            )
        )
    return specs


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    start: datetime
    end: datetime
    value: tuple[Any, ...]


def _merge(pieces: list[_Piece]) -> list[_Piece]:
    merged: list[_Piece] = []
    for piece in pieces:
        if merged and merged[-1].value == piece.value and merged[-1].end == piece.start:
            merged[-1] = _Piece(merged[-1].start, piece.end, piece.value)
        else:
            merged.append(piece)
    return merged


def _canonical(pieces: list[_Piece], start: datetime, end: datetime, extend: bool) -> list[_Piece]:
    """``pieces`` clipped to ``[start, end)`` and merged; with ``extend``, the last one is
    stretched to ``end``."""
    clipped = [
        _Piece(max(p.start, start), min(p.end, end), p.value)
        for p in pieces
        if p.end > start and p.start < end
    ]
    if extend and clipped and clipped[-1].end < end:
        clipped[-1] = _Piece(clipped[-1].start, end, clipped[-1].value)
    return _merge(clipped)


def _r(value: float) -> float:
    return round(value, 3)


@dataclass(frozen=True)
class _Result:
    segments: list[dict[str, Any]]
    facility: list[_Piece]
    per_node: dict[int, list[_Piece]]


def _allocate_segments(segments: list[Segment], specs: list[NodeSpec]) -> _Result:
    trajectory: list[dict[str, Any]] = []
    facility: list[_Piece] = []
    per_node: dict[int, list[_Piece]] = {spec.node_id: [] for spec in specs}
    for item in allocate_segments(segments, specs):  # one allocation per distinct budget
        seg, result = item.segment, item.result
        trajectory.append(
            {
                "start": seg.start.isoformat(),
                "end": seg.end.isoformat(),
                "facility_limit_kw": seg.facility_limit_kw,
                "gpu_budget_kw": seg.gpu_budget_kw,
                "contributing_event_ids": list(seg.contributing_event_ids),
                "binding_event_id": seg.binding_event_id,
                "feasible": result.feasible,
                "shortfall_kw": result.shortfall_kw,
                "allocated_w": result.total_w,
            }
        )
        facility.append(
            _Piece(
                seg.start,
                seg.end,
                (
                    _r(seg.facility_limit_kw),
                    _r(seg.gpu_budget_kw),
                    seg.contributing_event_ids,
                    seg.binding_event_id,
                ),
            )
        )
        for node_id, power_w in result.allocations.items():
            per_node[node_id].append(_Piece(seg.start, seg.end, (_r(power_w),)))
    return _Result(trajectory, _merge(facility), {n: _merge(p) for n, p in per_node.items()})


def _stored(session: Session, version: BudgetVersion) -> _Result:
    facility = [
        _Piece(
            datetime.fromisoformat(s["start"]),
            datetime.fromisoformat(s["end"]),
            (
                _r(s["facility_limit_kw"]),
                _r(s["gpu_budget_kw"]),
                tuple(s["contributing_event_ids"]),
                s["binding_event_id"],
            ),
        )
        for s in version.trajectory
    ]
    per_node: dict[int, list[_Piece]] = {}
    for row in repository.allocations(session, version.id):
        per_node.setdefault(row.node_id, []).append(
            _Piece(row.start_at, row.end_at, (_r(row.power_w),))
        )
    return _Result(version.trajectory, _merge(facility), per_node)


def _same_from(old: _Result, new: _Result, start: datetime, end: datetime) -> bool:
    """Whether ``old`` already says what ``new`` says over ``[start, end)``.

    Beyond its own window an old version is taken to continue its last segment only when that
    segment is the no-event state (nothing changes until an event); after an event segment the
    old version knows nothing, so a longer new window is news.
    """
    if not old.facility:
        return False
    extend = old.facility[-1].value[2] == ()
    if _canonical(old.facility, start, end, extend) != _canonical(new.facility, start, end, True):
        return False
    if set(old.per_node) != set(new.per_node):
        return False
    return all(
        _canonical(old.per_node[n], start, end, extend)
        == _canonical(new.per_node[n], start, end, True)
        for n in new.per_node
    )


def recompute_budget(
    session: Session, *, now: datetime, reason: str, settings: GridlinkSettings
) -> BudgetVersion | None:
    """Plan and allocate from the current inputs; store a new version if the result changed.

    Returns the new version, or None when the latest version already says the same from ``now``
    on. Deterministic: the same inputs at the same ``now`` give the same result.
    """
    start, end = planning_window(now, settings)
    baseline = baseline_policy(session, now=now, settings=settings)
    segments, events = _plan(session, start=start, end=end, baseline=baseline, settings=settings)
    specs = node_specs(session, now=now, settings=settings)
    result = _allocate_segments(segments, specs)

    latest = repository.latest_version(session)
    if latest is not None and _same_from(_stored(session, latest), result, now, end):
        return None

    version = BudgetVersion(
        created_at=now,
        reason=reason[:256],
        inputs={
            "now": now.isoformat(),
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "facility_max_kw": settings.facility_max_kw,
            "overhead_kw": settings.facility_overhead_kw,
            "baseline": {
                "kind": baseline.kind,
                "fixed_kw": baseline.fixed_kw,
                "measured_kw": baseline.measured_kw,
            },
            "events": [{"id": e.id, "version": e.version, "priority": e.priority} for e in events],
            "nodes": [
                {
                    "id": s.node_id,
                    "min_w": s.min_w,
                    "max_w": s.max_w,
                    "tier": s.tier,
                    "demand_w": s.demand_w,
                }
                for s in specs
            ],
        },
        trajectory=result.segments,
    )
    session.add(version)
    session.flush()
    session.add_all(
        NodeAllocation(
            budget_version_id=version.id,
            node_id=node_id,
            start_at=piece.start,
            end_at=piece.end,
            power_w=piece.value[0],
        )
        for node_id, pieces in result.per_node.items()
        for piece in pieces
    )
    session.flush()
    return version


def upcoming_boundaries(session: Session, *, after: datetime, until: datetime) -> list[datetime]:
    """Every interval start or end of current, non-cancelled events in ``(after, until]``:
    the instants at which the budget changes."""
    instants: set[datetime] = set()
    for interval in events_repository.boundary_intervals(session, after=after, until=until):
        for instant in (
            interval.start_at,
            interval.start_at + timedelta(seconds=interval.duration_s),
        ):
            if after < instant <= until:
                instants.add(instant)
    return sorted(instants)


def node_trajectory(session: Session, node_id: int, *, now: datetime) -> NodeTrajectory:
    """The latest version's allocation segments for ``node_id`` that end after ``now``."""
    nodes_service.get_node(session, node_id)
    latest = repository.latest_version(session)
    if latest is None:
        return NodeTrajectory(node_id=node_id, version_id=None, created_at=None, segments=[])
    rows = repository.allocations(session, latest.id, node_id=node_id, ending_after=now)
    return NodeTrajectory(
        node_id=node_id,
        version_id=latest.id,
        created_at=latest.created_at,
        segments=[
            AllocationSegment(start=r.start_at, end=r.end_at, power_w=r.power_w) for r in rows
        ],
    )


def list_versions(
    session: Session, *, limit: int, before_id: int | None
) -> list[BudgetVersionSummary]:
    return [
        BudgetVersionSummary(id=v.id, created_at=v.created_at, reason=v.reason)
        for v in repository.list_versions(session, limit=limit, before_id=before_id)
    ]


def get_version(session: Session, version_id: int) -> BudgetVersionOut:
    version = repository.get_version(session, version_id)
    if version is None:
        raise NotFoundError("budget version", version_id)
    allocations: dict[int, list[AllocationSegment]] = {}
    for row in repository.allocations(session, version.id):
        allocations.setdefault(row.node_id, []).append(
            AllocationSegment(start=row.start_at, end=row.end_at, power_w=row.power_w)
        )
    return BudgetVersionOut(
        id=version.id,
        created_at=version.created_at,
        reason=version.reason,
        inputs=version.inputs,
        trajectory=version.trajectory,
        allocations=allocations,
    )


def timeline(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    settings: GridlinkSettings,
) -> Timeline:
    """The facility limit and GPU budget over ``[start, end)`` from the current events."""
    if end <= start:
        raise InvalidInputError("end", "must be after start", location="query")
    if end - start > timedelta(days=settings.max_timeline_days):
        raise InvalidInputError(
            "end",
            f"the window may span at most {settings.max_timeline_days:g} days",
            location="query",
        )
    baseline = baseline_policy(session, now=now, settings=settings)
    segments, events = _plan(session, start=start, end=end, baseline=baseline, settings=settings)
    by_id = {e.id: e for e in events}
    return Timeline(
        start=start,
        end=end,
        facility_max_kw=settings.facility_max_kw,
        overhead_kw=settings.facility_overhead_kw,
        baseline_kind=baseline.kind,
        baseline_kw=baseline.resolve_kw(),
        segments=[
            TimelineSegment(
                start=s.start,
                end=s.end,
                facility_limit_kw=s.facility_limit_kw,
                gpu_budget_kw=s.gpu_budget_kw,
                binding_event_id=s.binding_event_id,
                contributing_event_ids=list(s.contributing_event_ids),
                contributing_events=[
                    EventRef(
                        id=by_id[i].id,
                        name=by_id[i].name,
                        source=by_id[i].source.value,
                        priority=by_id[i].priority,
                    )
                    for i in s.contributing_event_ids
                ],
            )
            for s in segments
        ],
    )
