"""Gateway configuration: ``GRIDLINK_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridlink.db.engine import DEFAULT_POOL_RECYCLE_S

DEFAULT_DATA_DIR = Path("var")


class PriceThreshold(BaseModel):
    """Price above ``above`` (currency per kWh) -> a facility limit or a reduction."""

    above: float = Field(ge=0)
    limit_kw: float | None = Field(default=None, gt=0)
    reduction_pct: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one_signal(self) -> Self:
        if (self.limit_kw is None) == (self.reduction_pct is None):
            raise ValueError("a price threshold needs exactly one of limit_kw or reduction_pct")
        return self


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
    db_pool_recycle_s: float = Field(
        default=DEFAULT_POOL_RECYCLE_S,
        gt=0,
        description=(
            "PostgreSQL: a pooled connection older than this is replaced at its next use, so "
            "the memory libpq keeps per connection for the largest message it carried is given "
            "back (s)."
        ),
    )

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
    http_keepalive_s: int = Field(
        default=30,
        gt=0,
        le=3600,
        description=(
            "An idle client connection is closed after this (s). Longer than clients' own idle "
            "expiry (httpx: 5 s), so the client closes first: with both at 5 s, a client that "
            "sends every 5 s now and then writes into a connection the server is closing "
            "(connection reset)."
        ),
    )
    stream_shutdown_grace_s: int = Field(
        default=3, ge=0, description="On shutdown, open streams are cut after this many seconds."
    )
    stream_queue_size: int = Field(
        default=16, ge=1, description="Versions buffered per stream before it is dropped as slow."
    )

    # -- delivered-reduction reports (gridlink/reports) --------------------------------------
    report_timezone: str = Field(
        default="UTC", description="Facility time zone: reports show local times in it (IANA)."
    )
    report_interval_s: int = Field(
        default=900, ge=60, le=3600, description="Default settlement interval of a report (s)."
    )
    report_scheduled_intervals_s: list[int] = Field(
        default=[300, 900], description="Settlement intervals generated for every ended event."
    )
    report_settlement_delay_s: float = Field(
        default=900.0, ge=0, description="Reports are generated this long after an event ends."
    )
    report_catchup_days: float = Field(
        default=7.0, gt=0, description="Ended events older than this get no scheduled report."
    )
    report_isolation: Literal["process", "inline"] = Field(
        default="process",
        description=(
            "process: the report check generates due reports and corrections in a short-lived "
            "child process, so their memory goes back to the system when it exits instead of "
            "fragmenting the gateway's heap; inline: in the scheduler's thread."
        ),
    )
    report_check_interval_s: float = Field(
        default=60.0, gt=0, description="Period of the scheduler's due-report check."
    )
    report_correction_debounce_s: float = Field(
        default=300.0,
        ge=0,
        description="A report is corrected once no late telemetry for it arrived this long.",
    )
    report_pre_event_window_min: float = Field(
        default=60.0, gt=0, description="Pre-event average baseline: window before the event."
    )
    report_sample_period_s: float = Field(
        default=1.0, gt=0, description="Nodes' telemetry period; sets the expected sample count."
    )
    report_min_coverage: float = Field(
        default=0.9, gt=0, le=1, description="A node-interval below this coverage is partial."
    )
    report_tolerance_frac: float = Field(
        default=0.02, ge=0, le=1, description="Compliant: measured <= limit x (1 + this)."
    )
    report_contracted_kw: float | None = Field(
        default=None, gt=0, description="Contracted baseline (kW; default: baseline_fixed_kw)."
    )
    report_hxy_x: int = Field(default=5, ge=1, description="High X of Y: days averaged (X).")
    report_hxy_y: int = Field(default=10, ge=1, description="High X of Y: days considered (Y).")
    report_hxy_adjustment_cap: float = Field(
        default=0.2, ge=0, lt=1, description="Same-day adjustment factor clipped to 1 +- this."
    )
    report_hxy_adjustment_h: float = Field(
        default=2.0, gt=0, description="Same-day adjustment window length (hours)."
    )
    report_hxy_adjustment_gap_h: float = Field(
        default=1.0, ge=0, description="Gap between the adjustment window and the event (hours)."
    )
    report_hxy_search_days: int = Field(
        default=20, ge=1, le=90, description="How many past days are searched for comparables."
    )
    # -- OpenADR 3.1 VEN (gridlink/openadr) and prices (gridlink/prices); docs/openadr.md ------
    openadr_enabled: bool = Field(
        default=False, description="Run the OpenADR VEN (poll, subscribe, report) on the leader."
    )
    openadr_vtn_url: str | None = Field(
        default=None, description="Base URL of the VTN's OpenADR 3.1 API, e.g. https://vtn/oadr3."
    )
    openadr_client_id: str | None = Field(default=None, description="OAuth2 client id of the VEN.")
    openadr_client_secret: SecretStr | None = Field(
        default=None, description="OAuth2 client secret of the VEN."
    )
    openadr_token_auth: Literal["basic", "form"] = Field(
        default="basic",
        description="How the token request authenticates: HTTP Basic, or client_id/secret in "
        "the form body.",
    )
    openadr_bearer_token: SecretStr | None = Field(
        default=None,
        description="A bearer token issued out of band, for VTNs without a token endpoint "
        "(used instead of client credentials).",
    )
    openadr_token_scope: str | None = Field(
        default=None, description="OAuth2 scope sent with the token request (none by default)."
    )
    openadr_ven_name: str = Field(
        default="gridlink", min_length=1, max_length=128, description="This VEN's venName."
    )
    openadr_program_ids: list[str] = Field(
        default_factory=list,
        description="VTN program ids to follow (JSON list); empty: every program the VTN shows.",
    )
    openadr_targets: list[str] = Field(
        default_factory=list,
        description="Extra target strings that address this VEN (venName and resource names "
        "always do).",
    )
    openadr_query_targets: bool = Field(
        default=True,
        description="Also list events with this VEN's targets as the 'targets' query (VTNs "
        "that show a VEN only the targeted events it names).",
    )
    openadr_resources: Literal["facility", "nodes"] = Field(
        default="facility",
        description="Resources registered with the VTN: the facility as one, or every node.",
    )
    openadr_facility_resource: str = Field(
        default="facility",
        min_length=1,
        max_length=128,
        description="The facility's resource name.",
    )
    openadr_register: bool = Field(
        default=True, description="Register the VEN and its resources with the VTN."
    )
    openadr_poll_interval_s: float = Field(
        default=60.0, gt=0, description="Period of the programs/events poll (the safety net)."
    )
    openadr_report_interval_s: float = Field(
        default=60.0, gt=0, description="Period of the job that posts due reports."
    )
    openadr_report_baseline: Literal["model", "high_x_of_y", "pre_event", "contracted"] = Field(
        default="model",
        description="Audit-report baseline behind BASELINE and DELTA_USAGE in OpenADR reports "
        "(docs/openadr.md; fallback: the pre-event average).",
    )
    openadr_page_limit: int = Field(
        default=50, ge=1, le=50, description="Page size of list requests (the spec caps it at 50)."
    )
    openadr_timeout_s: float = Field(default=10.0, gt=0, description="VTN request timeout.")
    openadr_backoff_max_s: float = Field(
        default=300.0, gt=0, description="Longest wait between attempts while the VTN fails."
    )
    openadr_simple_reductions_pct: list[float] = Field(
        default_factory=lambda: [0.0, 10.0, 25.0, 50.0],
        min_length=4,
        max_length=4,
        description="Reduction (% of baseline) for SIMPLE levels 0..3; ALERT_GRID_EMERGENCY "
        "takes the deepest.",
    )
    openadr_mqtt: bool = Field(
        default=False,
        description="Also take event notifications from the VTN's MQTT notifier "
        "(GET /notifiers), when it offers one.",
    )
    openadr_webhook_base_url: str | None = Field(
        default=None,
        description="The gateway's URL as the VTN reaches it; set to subscribe with webhooks "
        "(callback: <url>/v1/openadr/notifications).",
    )
    openadr_webhook_token: SecretStr | None = Field(
        default=None, description="Bearer token the VTN must send with notifications."
    )
    price_policy: Literal["none", "thresholds", "economic"] = Field(
        default="none", description="How prices become facility limits (docs/openadr.md)."
    )
    price_thresholds: list[PriceThreshold] = Field(
        default_factory=list,
        description='Threshold policy, JSON: [{"above": 0.3, "limit_kw": 600} | '
        '{"above": 0.5, "reduction_pct": 40}] (prices per kWh).',
    )
    price_token_value_per_mtok: float = Field(
        default=0.0, ge=0, description="Economic policy: value of one million served tokens."
    )
    price_currency: str = Field(
        default="USD", min_length=3, max_length=3, description="Currency prices are compared in."
    )
    price_file_url: str | None = Field(
        default=None, description="Day-ahead price file (JSON or CSV) polled over HTTP."
    )
    price_file_format: Literal["auto", "json", "csv"] = Field(
        default="auto", description="Format of the price file (auto: from Content-Type)."
    )
    price_file_poll_interval_s: float = Field(
        default=3600.0, gt=0, description="Period of the price file poller."
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
        if self.report_hxy_x > self.report_hxy_y:
            raise ValueError("report_hxy_x must be <= report_hxy_y")
        _check_report_settings(self.report_timezone, self.report_scheduled_intervals_s)
        if self.telemetry_rollup_retention_days < self.telemetry_raw_retention_days:
            raise ValueError("telemetry_rollup_retention_days must be >= raw retention")
        return self

    @model_validator(mode="after")
    def _signals_consistent(self) -> Self:
        if self.openadr_enabled and not self.openadr_vtn_url:
            raise ValueError("openadr_vtn_url is required when openadr_enabled is true")
        if (self.openadr_client_id is None) != (self.openadr_client_secret is None):
            raise ValueError("set both openadr_client_id and openadr_client_secret, or neither")
        if self.openadr_bearer_token is not None and self.openadr_client_id is not None:
            raise ValueError("set openadr_bearer_token or the client credentials, not both")
        if self.price_policy == "thresholds" and not self.price_thresholds:
            raise ValueError("price_policy 'thresholds' needs price_thresholds")
        if self.price_policy == "economic" and self.price_token_value_per_mtok <= 0:
            raise ValueError("price_policy 'economic' needs price_token_value_per_mtok > 0")
        return self

    @property
    def effective_report_contracted_kw(self) -> float:
        if self.report_contracted_kw is not None:
            return self.report_contracted_kw
        return self.effective_baseline_fixed_kw

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


def _check_report_settings(timezone: str, intervals_s: list[int]) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"report_timezone: unknown time zone {timezone!r}") from err
    for value in intervals_s:
        if not 60 <= value <= 3600 or value % 60 or 86_400 % value:
            raise ValueError(
                f"report_scheduled_intervals_s: {value} must be whole minutes, 60..3600 s, "
                "dividing a day"
            )


@lru_cache
def get_settings() -> GridlinkSettings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return GridlinkSettings()
