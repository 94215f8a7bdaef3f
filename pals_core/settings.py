"""Node-side configuration: ``PALS_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PalsSettings(BaseSettings):
    """Every setting of the node agent. Read once through :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="PALS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default=Path("var"), description="Folder for profiles and run output.")
    control_period_s: float = Field(
        default=0.5, gt=0.0, le=60.0, description="Controller period in seconds."
    )
    engine_url: str = Field(
        default="http://127.0.0.1:8100",
        description="Base URL of the serving engine (vLLM or `pals sim-node`).",
    )
    gateway_url: str | None = Field(
        default=None, description="gridlink gateway URL to follow for power budgets (optional)."
    )
    observe_only: bool = Field(
        default=False, description="Never write GPU power limits; only read and report."
    )
    vllm_control: str | None = Field(
        default=None,
        description=(
            "The PALS vLLM plugin's control channel (unix:/path.sock or host:port), the same "
            "value vLLM runs with; unset: the batch limit goes through engine_url (pals proxy, "
            "sim-node). See docs/vllm.md."
        ),
    )

    # -- the node agent (`pals agent`, `pals fleet`; docs/agent.md) ------------------------------
    gateway_token: str | None = Field(
        default=None, description="Gateway bearer token (a node token; admin for a fleet)."
    )
    gateway_token_file: Path | None = Field(
        default=None, description="File holding the gateway token (when gateway_token is unset)."
    )
    node_name: str | None = Field(
        default=None, description="Name the node registers under (default: the host name)."
    )
    profile_path: Path | None = Field(
        default=None, description="PALS profile of this node (default: <data_dir>/profile.json)."
    )
    itl_p99_slo_s: float = Field(
        default=0.1, gt=0, le=10, description="ITL p99 SLO of the QoS windows (seconds)."
    )
    budget_lead_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Look-ahead: a budget fall reaches the controller this early (its settling).",
    )
    lease_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="No contact with the gateway this long: fall to the failsafe budget.",
    )
    failsafe_w: float | None = Field(
        default=None,
        ge=0,
        description="Failsafe node GPU budget in W (default: the node's minimum); never above the "
        "last known budget.",
    )
    heartbeat_s: float = Field(
        default=20.0, gt=0, le=3600, description="Registration heartbeat period (seconds)."
    )
    telemetry_batch_s: float = Field(
        default=2.0, gt=0, le=3600, description="Telemetry is sent this often (seconds)."
    )
    spool_max_samples: int = Field(
        default=86_400,
        ge=1,
        description="Most telemetry samples buffered on disk per node; the oldest are dropped.",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address of the agent's /metrics.")
    metrics_port: int = Field(
        default=9400, ge=0, le=65535, description="Port of the agent's /metrics (0: any free)."
    )

    def resolved_gateway_token(self) -> str | None:
        """The token from ``gateway_token``, else the last line of ``gateway_token_file``."""
        if self.gateway_token:
            return self.gateway_token.strip()
        if self.gateway_token_file is not None:
            text = self.gateway_token_file.read_text(encoding="utf-8").strip()
            return text.splitlines()[-1].strip() if text else None
        return None


@lru_cache
def get_settings() -> PalsSettings:
    return PalsSettings()
