"""API shapes of nodes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from gridlink.api.types import FINITE, SafeText
from gridlink.models.node import NodeStatus

Watts = Annotated[float, Field(ge=0, le=1e7)]


class NodeRegister(BaseModel):
    """Registration and heartbeat body. ``min_power_w`` is derived: every GPU at its minimum cap
    plus idle power; ``max_power_w`` every GPU at its maximum cap plus idle power."""

    model_config = FINITE

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    gpu_type: SafeText = Field(min_length=1, max_length=64)
    gpu_count: int = Field(ge=1, le=1024)
    gpu_min_cap_w: float = Field(gt=0, le=5000, description="Lowest settable cap per GPU (W).")
    gpu_max_cap_w: float = Field(gt=0, le=5000, description="Highest settable cap per GPU (W).")
    idle_power_w: float = Field(default=0.0, ge=0, le=1e6, description="Non-GPU node power (W).")
    flexibility_tier: int = Field(
        default=1, ge=0, le=10, description="0 = protected; higher tiers are curtailed first."
    )
    curve: list[tuple[Watts, Watts]] = Field(
        default_factory=list,
        max_length=256,
        description="Power-to-throughput summary from the node's profile: "
        "[[power_w, throughput_tok_s], ...] with increasing power.",
    )

    stock_curve: list[tuple[Watts, Watts]] | None = Field(
        default=None,
        max_length=256,
        description="Node power at the stock configuration (maximum caps, default batch limit) "
        "by load, from the profile: [[throughput_tok_s, power_w], ...] with increasing "
        "throughput. The reports' model-counterfactual baseline uses it.",
    )

    @field_validator("stock_curve")
    @classmethod
    def _increasing_load(
        cls, value: list[tuple[float, float]] | None
    ) -> list[tuple[float, float]] | None:
        if value is None:
            return None
        if len(value) < 2:
            raise ValueError("give at least 2 points, or none")
        for i in range(1, len(value)):
            if value[i][0] <= value[i - 1][0]:
                raise ValueError(f"throughput_tok_s must increase strictly (point {i})")
        return value

    @field_validator("gpu_max_cap_w")
    @classmethod
    def _max_at_least_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("gpu_min_cap_w")
        if low is not None and value < low:
            raise ValueError(f"must be >= gpu_min_cap_w ({low} W)")
        return value

    @field_validator("curve")
    @classmethod
    def _increasing_power(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) == 1:
            raise ValueError("give at least 2 points, or none")
        for i in range(1, len(value)):
            if value[i][0] <= value[i - 1][0]:
                raise ValueError(f"power_w must increase strictly (point {i})")
            if value[i][1] < value[i - 1][1]:
                raise ValueError(f"throughput_tok_s must not decrease with power (point {i})")
        return value

    @property
    def min_power_w(self) -> float:
        return self.gpu_count * self.gpu_min_cap_w + self.idle_power_w

    @property
    def max_power_w(self) -> float:
        return self.gpu_count * self.gpu_max_cap_w + self.idle_power_w


class NodeOut(BaseModel):
    id: int
    name: str
    gpu_type: str
    gpu_count: int
    gpu_min_cap_w: float | None
    gpu_max_cap_w: float | None
    idle_power_w: float
    min_power_w: float
    max_power_w: float
    flexibility_tier: int
    curve: list[tuple[float, float]]
    status: NodeStatus
    last_seen_at: datetime | None
    latest_power_w: float | None = Field(description="Most recent telemetry power (W).")
    latest_sample_at: datetime | None
    current_allocation_w: float | None = Field(
        description="Allocation in force now from the latest budget version (W)."
    )
    budget_version_id: int | None
