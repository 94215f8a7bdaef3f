"""API shapes of telemetry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gridlink.api.types import FINITE, INT4_MAX, ApiDatetime, SafeText


class TelemetrySampleIn(BaseModel):
    model_config = FINITE

    ts: ApiDatetime
    power_w: float = Field(ge=0, le=1e7)
    throughput_tok_s: float = Field(ge=0, le=1e9)
    power_cap_w: float | None = Field(default=None, gt=0, le=1e7)
    batch_limit: int | None = Field(default=None, ge=1, le=1_000_000)
    requests_waiting: int | None = Field(default=None, ge=0, le=INT4_MAX)
    qos_violation: bool = False
    sample_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="The node's id for this sample: a sample already stored is skipped.",
    )
    mode: SafeText | None = Field(default=None, max_length=32, description="The controller's mode.")
    gpu_power_caps_w: list[Annotated[float, Field(gt=0, le=5000)]] | None = Field(
        default=None, max_length=1024, description="Power cap of each GPU (W)."
    )
    demand_tok_s: float | None = Field(
        default=None, ge=0, le=1e9, description="Output tokens/s asked of the node (arrivals)."
    )


class TelemetryBatch(BaseModel):
    model_config = FINITE

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


class TelemetryMinute(BaseModel):
    """One node's samples over one minute: from raw samples while they are kept, then from
    the 1-minute rollups that replace them."""

    minute: datetime
    source: Literal["raw", "rollup"]
    samples: int
    power_w_avg: float
    power_w_max: float
    throughput_tok_s_avg: float
    power_cap_w_avg: float | None
    qos_violations: int


class DownsampleReport(BaseModel):
    cutoff: datetime
    raw_rolled_up: int
    rollups_written: int
    raw_deleted: int
    rollups_deleted: int
    minutes_deleted: int = Field(default=0, description="Node-minute sums past rollup retention.")
