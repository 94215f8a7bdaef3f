"""Budget recomputation: events + nodes + telemetry -> planner -> allocator -> a stored version.

``recompute_budget`` plans over ``[now - 1 h, now + planning_horizon_h)`` and stores a new
:class:`BudgetVersion` (with its reason, its inputs and per-node allocation segments) only when
the result differs from the latest version from ``now`` on (``budgets.versioning``): the window
slides with ``now``, so a recompute at an event boundary that changes nothing stores nothing.
Every number that comes from telemetry is quantised (baseline to 0.1 kW, demand to 50 W) so
that measurement noise does not mint a new version every time. Never commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gridlink.budgets import repository
from gridlink.budgets.inputs import (
    baseline_policy,
    node_limits,
    node_specs,
    plan,
    planning_window,
)
from gridlink.budgets.schemas import (
    AllocationSegment,
    BudgetVersionOut,
    BudgetVersionSummary,
    EventRef,
    NodeTrajectory,
    Timeline,
    TimelineSegment,
)
from gridlink.budgets.versioning import allocate_plan, same_from, stored_result
from gridlink.curtailments import repository as events_repository
from gridlink.errors import InvalidInputError, NotFoundError
from gridlink.models.budget import BudgetVersion
from gridlink.nodes import service as nodes_service
from gridlink.settings import GridlinkSettings


def recompute_budget(
    session: Session, *, now: datetime, reason: str, settings: GridlinkSettings
) -> BudgetVersion | None:
    """Plan and allocate from the current inputs; store a new version if the result changed.

    Returns the new version, or None when the latest version already says the same from ``now``
    on. Deterministic: the same inputs at the same ``now`` give the same result.
    """
    start, end = planning_window(now, settings)
    baseline = baseline_policy(session, now=now, settings=settings)
    segments, events = plan(session, start=start, end=end, baseline=baseline, settings=settings)
    specs = node_specs(session, now=now, settings=settings)
    result = allocate_plan(segments, specs, node_limits(events, specs))

    latest = repository.latest_version(session)
    if latest is not None and same_from(
        stored_result(latest, repository.allocation_matrix(session, latest.id)), result, now, end
    ):
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
    repository.add_version(session, version, result.allocations)
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
    segments, events = plan(session, start=start, end=end, baseline=baseline, settings=settings)
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
