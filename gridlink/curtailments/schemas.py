"""API shapes of curtailments (manual events)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gridlink.api.types import FINITE, ApiDate, ApiDatetime, SafeText
from gridlink.curtailments.recurrence import parse_rrule
from gridlink.models.event import EventSource, EventStatus, SignalKind

MAX_DURATION_S = 7 * 24 * 3600.0
SIGNAL_FIELDS = ("limit_kw", "reduction_kw", "reduction_pct")


class Recurrence(BaseModel):
    """Repeat the curtailment at the same local wall-clock time in ``timezone``: either ``freq``
    ``daily`` or ``weekdays`` (Monday to Friday) for ``count`` occurrences or until ``until``
    (inclusive, a local date), or an RFC 5545 ``rrule`` as calendars write it
    (``FREQ=WEEKLY;BYDAY=MO,WE;COUNT=8``; it carries its own COUNT or UNTIL). Occurrences are
    expanded into intervals when the curtailment is stored."""

    model_config = FINITE

    freq: Literal["daily", "weekdays"] | None = None
    count: int | None = Field(default=None, ge=1)
    until: ApiDate | None = None
    rrule: str | None = Field(
        default=None,
        min_length=6,
        max_length=500,
        description="RFC 5545 RRULE value (without the 'RRULE:' prefix is fine), FREQ DAILY, "
        "WEEKLY, MONTHLY or YEARLY, with COUNT or UNTIL; instead of freq/count/until.",
    )
    timezone: str = Field(default="UTC", description="IANA zone, e.g. America/Chicago.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown IANA time zone {value!r}") from err
        return value

    @field_validator("rrule")
    @classmethod
    def _valid_rrule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if text.upper().startswith("RRULE:"):
            text = text[len("RRULE:") :]
        parts = dict(part.partition("=")[::2] for part in text.upper().split(";"))
        if set(parts) & {"DTSTART", "RDATE", "EXDATE", "EXRULE"} or "\n" in text:
            raise ValueError("must be one RRULE value; the start is the curtailment's 'start'")
        if parts.get("FREQ") not in _RRULE_FREQS:
            raise ValueError(f"FREQ must be one of {', '.join(_RRULE_FREQS)}")
        if ("COUNT" in parts) == ("UNTIL" in parts):
            raise ValueError("needs exactly one of COUNT or UNTIL")
        try:
            parse_rrule(text, datetime(2000, 1, 1))
        except ValueError as err:
            raise ValueError(f"is not a valid RFC 5545 RRULE: {err}") from err
        return text

    @model_validator(mode="after")
    def _bounded(self) -> Recurrence:
        if self.rrule is not None:
            if self.freq is not None or self.count is not None or self.until is not None:
                raise ValueError("give either rrule or freq with count/until, not both")
            return self
        if self.freq is None:
            raise ValueError("recurrence needs freq (daily or weekdays) or an rrule")
        if (self.count is None) == (self.until is None):
            raise ValueError("recurrence needs exactly one of count or until")
        return self


_RRULE_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")


class CurtailmentCreate(BaseModel):
    """A curtailment: from ``start`` for ``duration_s`` (or until ``end``), the facility must stay
    under ``limit_kw``, or reduce by ``reduction_kw`` or ``reduction_pct`` from its baseline."""

    model_config = FINITE

    name: SafeText | None = Field(default=None, max_length=256)
    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="Idempotency key: posting the same external_id again with the same content "
        "returns the stored curtailment; with changed content it stores a new version.",
    )
    start: ApiDatetime
    duration_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    end: ApiDatetime | None = None
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

    model_config = FINITE

    name: SafeText | None = Field(default=None, max_length=256)
    start: ApiDatetime | None = None
    duration_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    end: ApiDatetime | None = None
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
