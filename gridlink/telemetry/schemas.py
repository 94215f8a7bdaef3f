"""API shapes of telemetry."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class TelemetrySampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ts: AwareDatetime
    power_w: float = Field(ge=0, le=1e7)
    throughput_tok_s: float = Field(ge=0, le=1e9)
    power_cap_w: float | None = Field(default=None, gt=0, le=1e7)
    batch_limit: int | None = Field(default=None, ge=1, le=1_000_000)
    requests_waiting: int | None = Field(default=None, ge=0)
    qos_violation: bool = False
    demand_tok_s: float | None = Field(
        default=None, ge=0, le=1e9, description="Output tokens/s asked of the node (arrivals)."
    )


class TelemetryBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: list[TelemetrySampleIn] = Field(min_length=1)


class TelemetryAccepted(BaseModel):
    node_id: int
    accepted: int
    first_ts: datetime
    last_ts: datetime
    node_came_back: bool = Field(description="The node was offline until this batch.")


class NodePower(BaseModel):
    node_id: int
    power_w: float
    ts: datetime


class FacilityPower(BaseModel):
    at: datetime
    facility_power_kw: float = Field(description="GPU nodes' latest power plus overhead (kW).")
    gpu_power_kw: float
    overhead_kw: float
    nodes_reporting: int = Field(description="Nodes with a sample within node_stale_after_s.")
    nodes: list[NodePower]


class DownsampleReport(BaseModel):
    cutoff: datetime
    raw_rolled_up: int
    rollups_written: int
    raw_deleted: int
    rollups_deleted: int
