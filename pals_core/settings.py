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


@lru_cache
def get_settings() -> PalsSettings:
    return PalsSettings()
