"""API shapes of reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

ReportFormat = Literal["json", "csv", "html"]


class ReportGenerate(BaseModel):
    """Generate a report now: on one event (``event_id``, any of its versions) or on a window
    (``start`` and ``end``). Unchanged inputs return the stored version (200); changed ones store
    a new version linked to the previous one (201)."""

    model_config = ConfigDict(extra="forbid")

    event_id: int | None = Field(default=None, ge=1)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    interval_s: int | None = Field(
        default=None, ge=60, le=3600, description="Settlement interval (s); must divide a day."
    )

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        window = self.start is not None or self.end is not None
        if (self.event_id is None) == (not window):
            raise ValueError("give either event_id, or start and end")
        if window and (self.start is None or self.end is None):
            raise ValueError("a window needs both start and end")
        return self


class ReportSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    subject: str
    version: int
    previous_id: int | None
    event_key: str | None
    window_start: datetime
    window_end: datetime
    interval_s: int
    trigger: str = Field(description="scheduled, request or correction.")
    generated_at: datetime
    generated_by: str
    inputs_hash: str
    content_hash: str = Field(description="SHA-256 over the body and the inputs hash.")


class ReportOut(ReportSummary):
    body: dict[str, Any]
