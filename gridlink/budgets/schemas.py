"""API shapes of budgets: the facility timeline and node allocation trajectories."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AllocationSegment(BaseModel):
    start: datetime
    end: datetime
    power_w: float


class NodeTrajectory(BaseModel):
    """A node's allocation from the latest budget version: piecewise constant, from now on."""

    node_id: int
    version_id: int | None = Field(description="None until a budget has been computed.")
    created_at: datetime | None
    segments: list[AllocationSegment]

    def power_at(self, at: datetime) -> float | None:
        for segment in self.segments:
            if segment.start <= at < segment.end:
                return segment.power_w
        return None


class EventRef(BaseModel):
    id: int
    name: str | None
    source: str
    priority: int


class TimelineSegment(BaseModel):
    start: datetime
    end: datetime
    facility_limit_kw: float
    gpu_budget_kw: float
    binding_event_id: int | None
    contributing_event_ids: list[int]
    contributing_events: list[EventRef]


class Timeline(BaseModel):
    start: datetime
    end: datetime
    facility_max_kw: float
    overhead_kw: float
    baseline_kind: str
    baseline_kw: float
    segments: list[TimelineSegment]


class BudgetVersionSummary(BaseModel):
    id: int
    created_at: datetime
    reason: str


class BudgetVersionOut(BudgetVersionSummary):
    """A stored version with what made it: inputs (window, baseline, event versions, node
    specs and demands), facility segments, and every node's allocation segments."""

    inputs: dict[str, Any]
    trajectory: list[dict[str, Any]]
    allocations: dict[int, list[AllocationSegment]]
