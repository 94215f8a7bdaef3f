"""/v1/prices: post a series of interval prices; read prices with the limits they made."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from gridlink.api.deps import AppSettings, DbSession, Now, require
from gridlink.auth.permissions import Permission
from gridlink.auth.principal import Principal
from gridlink.budgets.hooks import recompute_and_publish
from gridlink.errors import InvalidInputError
from gridlink.prices import repository, service
from gridlink.prices.schemas import PricePointOut, PriceSeriesAccepted, PriceSeriesIn
from gridlink.prices.service import PriceInput

router = APIRouter(prefix="/v1/prices", tags=["prices"])

Writer = Annotated[Principal, Depends(require(Permission.CURTAILMENTS_WRITE))]
Reader = Annotated[Principal, Depends(require(Permission.TIMELINE_READ))]
SOURCE = "api"


@router.post("", response_model=PriceSeriesAccepted)
def post_prices(
    body: PriceSeriesIn,
    request: Request,
    session: DbSession,
    principal: Writer,
    now: Now,
    settings: AppSettings,
) -> PriceSeriesAccepted:
    """Store a price series (replacing the previous one with this ``series_id``); each price
    becomes a limit through the configured price policy."""
    changed = service.ingest_series(
        session,
        source=SOURCE,
        series_id=body.series_id,
        currency=body.currency,
        unit=body.unit,
        points=[PriceInput(i.start, i.duration_s, i.price) for i in body.intervals],
        actor=principal,
        now=now,
        settings=settings,
    )
    if changed:
        recompute_and_publish(
            request,
            session,
            actor=principal,
            now=now,
            reason=f"prices: series {body.series_id}",
            settings=settings,
        )
    points = repository.series(session, SOURCE, body.series_id)
    return PriceSeriesAccepted(
        series_id=body.series_id,
        changed=changed,
        points=[service.to_out(points[k]) for k in sorted(points)],
    )


@router.get("", response_model=list[PricePointOut])
def get_prices(
    session: DbSession,
    _principal: Reader,
    now: Now,
    settings: AppSettings,
    start: Annotated[AwareDatetime | None, Query(description="Default: now.")] = None,
    end: Annotated[AwareDatetime | None, Query(description="Default: start + horizon.")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[PricePointOut]:
    """Prices starting in ``[start, end)`` from every source, with the limit each made."""
    start = start or now
    end = end or start + timedelta(hours=settings.planning_horizon_h)
    if end <= start:
        raise InvalidInputError("end", "must be after start", location="query")
    rows = repository.between(session, start=start, end=end, limit=limit)
    return [service.to_out(r) for r in rows]
