"""API shapes of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gridlink.api.types import INT8_MAX, ApiDatetime, SafeText


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_token_id: int | None
    actor_role: str
    actor_name: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditQuery(BaseModel):
    """Which entries to list, newest first; ``before_id`` pages backwards."""

    model_config = ConfigDict(extra="forbid")

    entity: SafeText | None = Field(default=None, max_length=64)
    entity_id: SafeText | None = Field(default=None, max_length=64)
    action: SafeText | None = Field(default=None, max_length=64)
    since: ApiDatetime | None = None
    before_id: int | None = Field(
        default=None, ge=1, le=INT8_MAX, description="Page backwards from this id."
    )
    limit: int = Field(default=100, ge=1, le=1000)
