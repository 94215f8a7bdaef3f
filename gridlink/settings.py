"""Gateway configuration: ``GRIDLINK_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class GridlinkSettings(BaseSettings):
    """Every setting of the gateway. Read once through :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDLINK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Folder for the embedded SQLite database and other local state.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL. Default: SQLite at <data_dir>/gridlink.db. "
            "PostgreSQL: postgresql+psycopg://user@host:5432/dbname"
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    db_echo: bool = Field(default=False, description="Log every SQL statement.")

    # -- facility and planning ------------------------------------------------------------------
    facility_max_kw: float = Field(
        default=1000.0, gt=0, description="Facility power limit with no event in force (kW)."
    )
    facility_overhead_kw: float = Field(
        default=0.0,
        ge=0,
        description="Non-GPU load (cooling, CPUs, network) subtracted from the facility limit.",
    )
    baseline_mode: Literal["fixed", "measured"] = Field(
        default="fixed",
        description="Baseline for reductions: 'fixed' (baseline_fixed_kw) or 'measured' "
        "(average facility power over baseline_window_min).",
    )
    baseline_fixed_kw: float | None = Field(
        default=None,
        gt=0,
        description="Fixed baseline in kW (default: what the registered fleet can draw plus "
        "overhead, at most facility_max_kw).",
    )
    baseline_window_min: float = Field(
        default=15.0, gt=0, description="Measured baseline: averaging window in minutes."
    )
    planning_horizon_h: float = Field(
        default=24.0, gt=0, le=24 * 14, description="How far ahead budgets are planned (hours)."
    )
    max_limit_factor: float = Field(
        default=10.0,
        gt=1,
        description="Limits above this multiple of facility_max_kw are refused as absurd.",
    )
    max_recurrence_occurrences: int = Field(
        default=366, ge=1, description="Most occurrences one recurring curtailment may expand to."
    )
    max_timeline_days: float = Field(
        default=31.0, gt=0, description="Longest window GET /v1/timeline answers (days)."
    )

    # -- nodes ----------------------------------------------------------------------------------
    node_stale_after_s: float = Field(
        default=30.0, gt=0, description="A node unseen this long is 'stale'."
    )
    node_offline_after_s: float = Field(
        default=300.0,
        gt=0,
        description="A node unseen this long is 'offline' and gets no allocation.",
    )
    demand_window_s: float = Field(
        default=300.0, gt=0, description="Recent telemetry window used to estimate node demand."
    )
    demand_headroom: float = Field(
        default=1.1, ge=1, description="Demand = recent max power x this, for under-using nodes."
    )
    demand_underuse_frac: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="A node under this fraction of its allocation (and no queue) is under-using.",
    )

    # -- API and telemetry ----------------------------------------------------------------------
    max_body_bytes: int = Field(
        default=2_000_000, ge=1024, description="Largest request body accepted (bytes); 413 above."
    )
    telemetry_max_batch: int = Field(
        default=5000, ge=1, description="Most telemetry samples accepted in one request."
    )
    telemetry_raw_retention_days: float = Field(
        default=7.0, gt=0, description="Raw telemetry kept this long, then rolled up per minute."
    )
    telemetry_rollup_retention_days: float = Field(
        default=90.0, gt=0, description="1-minute telemetry rollups kept this long."
    )

    # -- scheduler (gridlink/scheduler) and node budget streams (gridlink/streams) ----------
    scheduler_enabled: bool = Field(
        default=True, description="Run the boundary scheduler and housekeeping (leader only)."
    )
    scheduler_lookahead_s: float = Field(
        default=86_400.0, gt=0, description="How far ahead budget boundaries are scheduled."
    )
    scheduler_catchup_s: float = Field(
        default=86_400.0, ge=0, description="How far back a boundary missed while down is applied."
    )
    scheduler_sync_interval_s: float = Field(
        default=60.0, gt=0, description="Period of the boundary re-sync safety net."
    )
    scheduler_leader_retry_s: float = Field(
        default=3.0, gt=0, description="Followers retry the leader lock this often."
    )
    node_status_interval_s: float = Field(
        default=10.0, gt=0, description="Period of the node status housekeeping job."
    )
    telemetry_housekeeping_interval_s: float = Field(
        default=600.0, gt=0, description="Period of telemetry downsampling and pruning."
    )
    stream_heartbeat_s: float = Field(
        default=15.0, gt=0, description="Heartbeat period of the allocation streams."
    )
    stream_lifetime_s: float = Field(
        default=300.0, gt=0, description="Streams end (with a reconnect event) after this."
    )
    stream_retry_ms: int = Field(
        default=2_000, ge=0, description="Reconnect delay hinted to stream clients (SSE retry)."
    )
    stream_shutdown_grace_s: int = Field(
        default=3, ge=0, description="On shutdown, open streams are cut after this many seconds."
    )
    stream_queue_size: int = Field(
        default=16, ge=1, description="Versions buffered per stream before it is dropped as slow."
    )

    # -- facility page and observability (gridlink/web, gridlink/observability) ------------------
    ui_refresh_s: float = Field(
        default=2.0, gt=0, le=60, description="Period of the facility page's live feed."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as plain text or one JSON object per line."
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        allowed = ("debug", "info", "warning", "error")
        if value.lower() not in allowed:
            raise ValueError(f"log_level must be one of {', '.join(allowed)}")
        return value.lower()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.facility_overhead_kw >= self.facility_max_kw:
            raise ValueError("facility_overhead_kw must be below facility_max_kw")
        if self.node_offline_after_s < self.node_stale_after_s:
            raise ValueError("node_offline_after_s must be >= node_stale_after_s")
        if self.telemetry_rollup_retention_days < self.telemetry_raw_retention_days:
            raise ValueError("telemetry_rollup_retention_days must be >= raw retention")
        return self

    @property
    def effective_baseline_fixed_kw(self) -> float:
        if self.baseline_fixed_kw is not None:
            return self.baseline_fixed_kw
        return self.facility_max_kw

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gridlink.db').as_posix()}"


@lru_cache
def get_settings() -> GridlinkSettings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return GridlinkSettings()
