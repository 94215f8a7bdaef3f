"""API shapes of curtailments (manual events)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gridlink.models.event import EventSource, EventStatus, SignalKind

MAX_DURATION_S = 7 * 24 * 3600.0
SIGNAL_FIELDS = ("limit_kw", "reduction_kw", "reduction_pct")


class Recurrence(BaseModel):
    """Repeat the curtailment at the same local wall-clock time ``daily`` or on ``weekdays``
    (Monday to Friday) in ``timezone``, for ``count`` occurrences or until ``until`` (inclusive,
    a local date). Occurrences are expanded into intervals when the curtailment is stored."""

    model_config = ConfigDict(extra="forbid")

    freq: Literal["daily", "weekdays"]
    count: int | None = Field(default=None, ge=1)
    until: date | None = None
    timezone: str = Field(default="UTC", description="IANA zone, e.g. America/Chicago.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown IANA time zone {value!r}") from err
        return value

    @model_validator(mode="after")
    def _bounded(self) -> Recurrence:
        if (self.count is None) == (self.until is None):
            raise ValueError("recurrence needs exactly one of count or until")
        return self


class CurtailmentCreate(BaseModel):
    """A curtailment: from ``start`` for ``duration_s`` (or until ``end``), the facility must stay
    under ``limit_kw``, or reduce by ``reduction_kw`` or ``reduction_pct`` from its baseline."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=256)
    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="Idempotency key: posting the same external_id again with the same content "
        "returns the stored curtailment; with changed content it stores a new version.",
    )
    start: AwareDatetime
    duration_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    end: AwareDatetime | None = None
    limit_kw: float | None = Field(default=None, gt=0)
    reduction_kw: float | None = Field(default=None, gt=0)
    reduction_pct: float | None = Field(default=None, gt=0, le=100)
    priority: int = Field(default=0, ge=-1000, le=1000)
    recurrence: Recurrence | None = None

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if value is not None and start is not None:
            if value <= start:
                raise ValueError("end must be after start")
            if (value - start).total_seconds() > MAX_DURATION_S:
                raise ValueError(f"end must be at most {MAX_DURATION_S:.0f} s after start")
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> CurtailmentCreate:
        if (self.duration_s is None) == (self.end is None):
            raise ValueError("give exactly one of duration_s or end")
        given = [f for f in SIGNAL_FIELDS if getattr(self, f) is not None]
        if len(given) != 1:
            got = ", ".join(given) or "none"
            raise ValueError(f"give exactly one of limit_kw, reduction_kw or reduction_pct ({got})")
        if self.recurrence is not None and self.occurrence_duration_s > 24 * 3600:
            raise ValueError("a recurring curtailment lasts at most 24 h per occurrence")
        return self

    @property
    def occurrence_duration_s(self) -> float:
        if self.duration_s is not None:
            return self.duration_s
        assert self.end is not None
        return (self.end - self.start).total_seconds()

    @property
    def signal(self) -> tuple[SignalKind, float]:
        for name in SIGNAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                return SignalKind(name), float(value)
        raise AssertionError("validated: one signal field is set")


class CurtailmentUpdate(BaseModel):
    """Fields to change; the others keep their values. Giving one of ``limit_kw``,
    ``reduction_kw`` or ``reduction_pct`` replaces the signal; giving ``start`` alone keeps the
    duration. ``recurrence: null`` removes the recurrence. Stored as a new version."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=256)
    start: AwareDatetime | None = None
    duration_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    end: AwareDatetime | None = None
    limit_kw: float | None = Field(default=None, gt=0)
    reduction_kw: float | None = Field(default=None, gt=0)
    reduction_pct: float | None = Field(default=None, gt=0, le=100)
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    recurrence: Recurrence | None = None


class IntervalOut(BaseModel):
    start: datetime
    end: datetime
    kind: SignalKind
    value: float
    units: str


class CurtailmentOut(BaseModel):
    id: int
    source: EventSource
    external_id: str
    version: int
    is_current: bool
    superseded_by_id: int | None
    name: str | None
    status: EventStatus = Field(description="Derived from the intervals and the current time.")
    priority: int
    start: datetime = Field(description="Start of the first occurrence.")
    end: datetime = Field(description="End of the first occurrence.")
    duration_s: float
    limit_kw: float | None
    reduction_kw: float | None
    reduction_pct: float | None
    recurrence: Recurrence | None
    intervals: list[IntervalOut]
    created_by: str | None
    created_at: datetime
    cancelled_at: datetime | None
    warnings: list[str] = Field(
        default_factory=list,
        description="Why this curtailment may not act as written (beyond the planning horizon, "
        "or a limit the registered fleet never reaches); empty when it binds.",
    )
