"""The facility right now: limit, GPU budget, measured power and every node's row.

One function, :func:`facility_now`, reads it in a handful of queries whatever the fleet size;
the live feed runs it once per tick for all open pages, and the page's first render uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gridlink.budgets import service as budgets_service
from gridlink.nodes import service as nodes_service
from gridlink.settings import GridlinkSettings
from gridlink.streams.snapshot import VersionSnapshot
from gridlink.telemetry import repository as telemetry_repository
from gridlink.web.views import NodeRow, age_s, node_mode, tokens_per_joule


@dataclass(frozen=True)
class FacilityNow:
    at: datetime
    limit_kw: float
    gpu_budget_kw: float
    facility_power_kw: float
    gpu_power_kw: float
    nodes_reporting: int
    version_id: int | None
    nodes: list[NodeRow]

    def status_counts(self) -> dict[str, int]:
        counts = {"online": 0, "stale": 0, "offline": 0}
        for row in self.nodes:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "t": self.at.timestamp(),
            "limit_kw": self.limit_kw,
            "gpu_budget_kw": self.gpu_budget_kw,
            "facility_power_kw": self.facility_power_kw,
            "gpu_power_kw": self.gpu_power_kw,
            "nodes_reporting": self.nodes_reporting,
            "version_id": self.version_id,
            "counts": self.status_counts(),
            "nodes": [row.as_json() for row in self.nodes],
        }


def allocation_at(snapshot: VersionSnapshot | None, node_id: int, at: datetime) -> float | None:
    if snapshot is None:
        return None
    for segment in snapshot.segments.get(node_id, ()):
        if segment.start <= at < segment.end:
            return segment.power_w
    return None


def facility_now(
    session: Session,
    *,
    now: datetime,
    settings: GridlinkSettings,
    allocations: VersionSnapshot | None,
) -> FacilityNow:
    timeline = budgets_service.timeline(
        session, start=now, end=now + timedelta(seconds=1), now=now, settings=settings
    )
    segment = timeline.segments[0]
    since = now - timedelta(seconds=settings.node_offline_after_s)
    latest = {
        s.node_id: s for s in telemetry_repository.latest_per_node(session, since=since, until=now)
    }
    fresh_after = now - timedelta(seconds=settings.node_stale_after_s)
    gpu_w = sum(s.power_w for s in latest.values() if s.ts >= fresh_after)
    rows: list[NodeRow] = []
    for node in nodes_service.list_nodes(session):
        sample = latest.get(node.id)
        power_w = None if sample is None else sample.power_w
        alloc_w = allocation_at(allocations, node.id, now)
        rows.append(
            NodeRow(
                id=node.id,
                name=node.name,
                status=nodes_service.status_at(node, now, settings).value,
                gpu_type=node.gpu_type,
                gpu_count=node.gpu_count,
                power_w=power_w,
                alloc_w=alloc_w,
                max_power_w=node.max_power_w,
                tok_per_j=None
                if sample is None
                else tokens_per_joule(sample.power_w, sample.throughput_tok_s),
                mode=node_mode(
                    power_w=power_w,
                    alloc_w=alloc_w,
                    min_power_w=node.min_power_w,
                    qos_violation=bool(sample and sample.qos_violation),
                    requests_waiting=None if sample is None else sample.requests_waiting,
                ),
                last_seen=None if node.last_seen_at is None else node.last_seen_at.isoformat(),
                age_s=age_s(node.last_seen_at, now),
            )
        )
    return FacilityNow(
        at=now,
        limit_kw=segment.facility_limit_kw,
        gpu_budget_kw=segment.gpu_budget_kw,
        facility_power_kw=gpu_w / 1000.0 + settings.facility_overhead_kw,
        gpu_power_kw=gpu_w / 1000.0,
        nodes_reporting=sum(1 for s in latest.values() if s.ts >= fresh_after),
        version_id=None if allocations is None else allocations.version_id,
        nodes=rows,
    )
