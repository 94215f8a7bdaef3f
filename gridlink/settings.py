"""Gateway configuration: ``GRIDLINK_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
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

    # -- scheduler (gridlink/scheduler) and node budget streams (gridlink/streams) --
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
    stream_queue_size: int = Field(
        default=16, ge=1, description="Versions buffered per stream before it is dropped as slow."
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        allowed = ("debug", "info", "warning", "error")
        if value.lower() not in allowed:
            raise ValueError(f"log_level must be one of {', '.join(allowed)}")
        return value.lower()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gridlink.db').as_posix()}"


@lru_cache
def get_settings() -> GridlinkSettings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return GridlinkSettings()
