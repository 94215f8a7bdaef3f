"""Price series -> price points -> limits (through the price policy) -> price events.

Each interval price whose policy decision is a limit becomes one gridlink event (source
``price``, external id ``<source>:<series>@<start>``) named after the price and the rule, so the
timeline says which price made which limit. A price that asks for nothing cancels its event; a
point missing from a re-posted series is removed and its event cancelled. Never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gridlink.auth.principal import Principal
from gridlink.curtailments.ingest import EventSpec, IntervalSpec, cancel_current, ingest_event
from gridlink.errors import InvalidInputError
from gridlink.models.event import EventSource, SignalKind
from gridlink.models.price import PricePoint
from gridlink.nodes import repository as nodes_repository
from gridlink.prices import policy, repository
from gridlink.prices.schemas import PricePointOut
from gridlink.settings import GridlinkSettings

PRICE_PRIORITY = 0


@dataclass(frozen=True)
class PriceInput:
    start: datetime
    duration_s: float
    price: float


def fleet(session: Session) -> list[policy.NodeCurve]:
    return [
        policy.NodeCurve(n.min_power_w, n.max_power_w, tuple((p, t) for p, t in n.curve))
        for n in nodes_repository.list_all(session)
    ]


def decide(
    price_kwh: float, nodes: Sequence[policy.NodeCurve], settings: GridlinkSettings
) -> policy.Decision | None:
    """The configured policy's decision for one price."""
    if settings.price_policy == "thresholds":
        thresholds = [
            policy.Threshold(
                t.above,
                SignalKind.LIMIT_KW if t.limit_kw is not None else SignalKind.REDUCTION_PCT,
                t.limit_kw if t.limit_kw is not None else float(t.reduction_pct or 0.0),
            )
            for t in settings.price_thresholds
        ]
        return policy.threshold_decision(price_kwh, thresholds)
    if settings.price_policy == "economic":
        return policy.economic_decision(
            price_kwh,
            nodes,
            value_per_mtok=settings.price_token_value_per_mtok,
            overhead_kw=settings.facility_overhead_kw,
            facility_max_kw=settings.facility_max_kw,
        )
    return None


def external_id(source: str, series_id: str, start: datetime) -> str:
    return f"{source}:{series_id}@{start.isoformat()}"[:256]


def ingest_series(
    session: Session,
    *,
    source: str,
    series_id: str,
    currency: str | None,
    unit: str | None,
    points: Sequence[PriceInput],
    actor: Principal,
    now: datetime,
    settings: GridlinkSettings,
) -> bool:
    """Store a series (replacing the previous one of ``(source, series_id)``); True when any
    price event changed, i.e. the budget must be recomputed."""
    currency = (currency or settings.price_currency).upper()
    if currency != settings.price_currency.upper():
        raise InvalidInputError(
            "currency", f"prices must be in {settings.price_currency}, got {currency}"
        )
    unit = (unit or "KWH").upper()
    nodes = fleet(session) if settings.price_policy == "economic" else []
    stored = repository.series(session, source, series_id)
    changed = False
    for point in sorted(points, key=lambda p: p.start):
        per_kwh = policy.price_per_kwh(point.price, unit)
        decision = decide(per_kwh, nodes, settings)
        row = stored.pop(point.start, None)
        if row is None:
            row = PricePoint(source=source, series_id=series_id, start_at=point.start)
            session.add(row)
        row.duration_s, row.price, row.currency, row.unit = (
            point.duration_s,
            point.price,
            currency,
            unit,
        )
        row.price_per_kwh = per_kwh
        key = external_id(source, series_id, point.start)
        if decision is None:
            row.limit_kw, row.rule, row.event_id = None, "no limit at this price", None
            cancelled = cancel_current(
                session, EventSource.PRICE, key, actor=actor, now=now, action="price.cancel"
            )
            changed = changed or cancelled is not None
            continue
        spec = EventSpec(
            source=EventSource.PRICE,
            external_id=key,
            priority=PRICE_PRIORITY,
            intervals=(IntervalSpec(point.start, point.duration_s, decision.kind, decision.value),),
            name=f"price {point.price:g} {currency}/{unit}: {decision.rule}"[:256],
        )
        result = ingest_event(session, spec, actor=actor, now=now, settings=settings)
        changed = changed or result.changed
        row.limit_kw = decision.value if decision.kind is SignalKind.LIMIT_KW else None
        row.rule, row.event_id = decision.rule[:256], result.event.id
    for row in stored.values():
        changed = _remove(session, row, actor=actor, now=now) or changed
    session.flush()
    return changed


def _remove(session: Session, row: PricePoint, *, actor: Principal, now: datetime) -> bool:
    """Delete a price point and cancel its event; True when an event was cancelled."""
    key = external_id(row.source, row.series_id, row.start_at)
    cancelled = cancel_current(
        session, EventSource.PRICE, key, actor=actor, now=now, action="price.cancel"
    )
    session.delete(row)
    return cancelled is not None


def withdraw_series(
    session: Session, *, source: str, series_id: str, actor: Principal, now: datetime
) -> bool:
    """Remove a series (its OpenADR event was deleted); True when an event was cancelled."""
    changed = False
    for row in repository.series(session, source, series_id).values():
        changed = _remove(session, row, actor=actor, now=now) or changed
    session.flush()
    return changed


def to_out(row: PricePoint) -> PricePointOut:
    return PricePointOut(
        source=row.source,
        series_id=row.series_id,
        start=row.start_at,
        end=row.start_at + timedelta(seconds=row.duration_s),
        price=row.price,
        currency=row.currency,
        unit=row.unit,
        price_per_kwh=row.price_per_kwh,
        limit_kw=row.limit_kw,
        rule=row.rule,
        event_id=row.event_id,
    )
