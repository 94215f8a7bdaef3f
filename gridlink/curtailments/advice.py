"""Warnings about a curtailment that is valid but will not do what its author may expect:
it starts beyond the planning horizon (not yet in the timeline or any allocation), or its limit
is above what the registered fleet can draw (it changes no node's budget).

``curtailment_warnings`` is pure; ``fleet_max_kw`` reads the registered nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridlink.curtailments.schemas import CurtailmentOut
from gridlink.models.event import EventStatus, SignalKind
from gridlink.models.node import Node, NodeStatus
from gridlink.settings import GridlinkSettings


@dataclass(frozen=True)
class IntervalView:
    start: datetime
    end: datetime
    kind: SignalKind
    value: float


def effective_limit_kw(interval: IntervalView, baseline_kw: float) -> float:
    """The facility limit an interval asks for, with reductions taken from ``baseline_kw``."""
    if interval.kind == SignalKind.LIMIT_KW:
        return interval.value
    if interval.kind == SignalKind.REDUCTION_KW:
        return max(0.0, baseline_kw - interval.value)
    return max(0.0, baseline_kw * (1.0 - interval.value / 100.0))


def curtailment_warnings(
    intervals: Sequence[IntervalView],
    *,
    now: datetime,
    planning_horizon_h: float,
    baseline_kw: float,
    fleet_max_kw: float | None,
) -> list[str]:
    """Human-readable warnings (empty when the curtailment will bind as written).

    ``fleet_max_kw`` is the most the registered, not-offline fleet can draw, overhead included
    (None when no node is registered).
    """
    warnings: list[str] = []
    future = [i for i in intervals if i.end > now]
    if not future:
        return warnings
    horizon_end = now + timedelta(hours=planning_horizon_h)
    first = min(i.start for i in future)
    if first >= horizon_end:
        planned_from = first - timedelta(hours=planning_horizon_h)
        warnings.append(
            f"starts beyond the {planning_horizon_h:g} h planning horizon: it is stored and "
            f"listed, and enters the timeline and node allocations from "
            f"{planned_from.isoformat(timespec='minutes')} (GET /v1/timeline?end=... shows it now)"
        )
    if fleet_max_kw is None:
        warnings.append("no node is registered: this curtailment limits no node's power yet")
        return warnings
    lowest = min(effective_limit_kw(i, baseline_kw) for i in future)
    if lowest >= fleet_max_kw:
        warnings.append(
            f"will not bind: its limit ({lowest:.1f} kW, baseline {baseline_kw:.1f} kW) is at or "
            f"above the most the registered fleet can draw ({fleet_max_kw:.1f} kW with overhead); "
            f"no node's budget changes"
        )
    return warnings


def fleet_max_kw(session: Session, *, overhead_kw: float) -> float | None:
    """Overhead plus the maximum power of every node that is not offline; None without nodes."""
    stmt = select(func.count(), func.sum(Node.max_power_w)).where(Node.status != NodeStatus.OFFLINE)
    count, total_w = session.execute(stmt).one()
    if not count:
        return None
    return overhead_kw + float(total_w or 0.0) / 1000.0


def with_warnings(
    session: Session, out: CurtailmentOut, *, now: datetime, settings: GridlinkSettings
) -> CurtailmentOut:
    """``out`` with its ``warnings`` filled in (none for a cancelled or superseded version)."""
    if out.status is EventStatus.CANCELLED or not out.is_current:
        return out
    from gridlink.budgets.inputs import baseline_policy

    baseline_kw = baseline_policy(session, now=now, settings=settings).resolve_kw()
    views = [IntervalView(i.start, i.end, i.kind, i.value) for i in out.intervals]
    out.warnings = curtailment_warnings(
        views,
        now=now,
        planning_horizon_h=settings.planning_horizon_h,
        baseline_kw=baseline_kw,
        fleet_max_kw=fleet_max_kw(session, overhead_kw=settings.facility_overhead_kw),
    )
    return out
