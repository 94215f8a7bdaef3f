"""Request and response bodies of /v1/prices (also the JSON format of the day-ahead file)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from gridlink.curtailments.schemas import MAX_DURATION_S

MAX_PRICE_INTERVALS = 2000
SERIES_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"


class PriceIntervalIn(BaseModel):
    start: AwareDatetime
    duration_s: float = Field(gt=0, le=MAX_DURATION_S)
    price: float = Field(allow_inf_nan=False, description="Price per `unit` in `currency`.")


class PriceSeriesIn(BaseModel):
    """A series of interval prices. Re-posting a ``series_id`` replaces that series."""

    series_id: str = Field(min_length=1, max_length=128, pattern=SERIES_ID_PATTERN)
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217, e.g. USD.")
    unit: str = Field(default="KWH", description="Energy unit the price is per: KWH, MWH, WH.")
    intervals: list[PriceIntervalIn] = Field(min_length=1, max_length=MAX_PRICE_INTERVALS)


class PricePointOut(BaseModel):
    source: str
    series_id: str
    start: datetime
    end: datetime
    price: float
    currency: str
    unit: str
    price_per_kwh: float
    limit_kw: float | None = Field(description="The limit this price made (None: no limit).")
    rule: str | None = Field(description="Why: the policy rule that turned price into limit.")
    event_id: int | None = Field(description="The gridlink event that carries the limit.")


class PriceSeriesAccepted(BaseModel):
    series_id: str
    changed: bool
    points: list[PricePointOut]
