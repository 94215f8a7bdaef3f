"""VTN events -> gridlink events: the one ingestion path of polls and webhook notifications.

Every VTN event is recorded (``openadr_events``) with what became of it (see the model). An
event maps to one gridlink event (source ``openadr``, external id = the VTN's event id): a
modified event is a new version, a deleted one is cancelled, the same event twice is one record.
PRICE intervals go through the price policy (series ``<event id>`` of source ``openadr``). An
invalid event is rejected with its reason and never stops the others: each is ingested in its
own savepoint. Never commits.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridlink.auth.principal import Principal
from gridlink.curtailments.ingest import EventSpec, IntervalSpec, cancel_current, ingest_event
from gridlink.curtailments.schemas import MAX_DURATION_S
from gridlink.errors import InvalidInputError
from gridlink.models.event import EventSource
from gridlink.models.openadr import OpenAdrEvent, OpenAdrEventState
from gridlink.nodes import repository as nodes_repository
from gridlink.openadr.mapping import EventRejected, MappedEvent, MappingContext, map_event
from gridlink.prices import service as prices
from gridlink.prices.service import PriceInput
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)

OPENADR = Principal(token_id=None, role="system", name="openadr")
PRICE_SOURCE = "openadr"


@dataclass
class SyncResult:
    changed: int = 0
    rejected: int = 0
    deleted: int = 0


def our_targets(settings: GridlinkSettings, resource_names: Iterable[str]) -> frozenset[str]:
    return frozenset(
        {settings.openadr_ven_name, settings.openadr_facility_resource, *settings.openadr_targets}
        | set(resource_names)
    )


def context(
    settings: GridlinkSettings, *, received_at: datetime, now: datetime, targets: frozenset[str]
) -> MappingContext:
    reductions = settings.openadr_simple_reductions_pct
    facility = frozenset(
        {settings.openadr_ven_name, settings.openadr_facility_resource, *settings.openadr_targets}
    )
    return MappingContext(
        received_at=received_at,
        horizon_end=now + timedelta(hours=settings.planning_horizon_h),
        targets=targets,
        simple_reductions_pct=(reductions[0], reductions[1], reductions[2], reductions[3]),
        ven_name=settings.openadr_ven_name,
        max_piece_s=MAX_DURATION_S,
        facility_targets=facility,
    )


def get_record(session: Session, vtn_event_id: str) -> OpenAdrEvent | None:
    stmt = select(OpenAdrEvent).where(OpenAdrEvent.vtn_event_id == vtn_event_id)
    return session.scalars(stmt).first()


def _apply(
    session: Session, mapped: MappedEvent, *, now: datetime, settings: GridlinkSettings
) -> tuple[bool, int | None, str | None]:
    """Store what ``mapped`` asks for; (changed, gridlink event id, reason if it asks nothing)."""
    changed = False
    event_id = None
    intervals = _scoped(session, mapped)
    if intervals:
        spec = EventSpec(
            source=EventSource.OPENADR,
            external_id=mapped.vtn_event_id,
            priority=mapped.priority,
            intervals=intervals,
            name=mapped.name,
        )
        result = ingest_event(session, spec, actor=OPENADR, now=now, settings=settings)
        changed, event_id = result.changed, result.event.id
    else:
        cancelled = cancel_current(
            session,
            EventSource.OPENADR,
            mapped.vtn_event_id,
            actor=OPENADR,
            now=now,
            action="openadr.withdraw",
        )
        changed = cancelled is not None
    if mapped.prices:
        first = mapped.prices[0]
        changed |= prices.ingest_series(
            session,
            source=PRICE_SOURCE,
            series_id=mapped.vtn_event_id,
            currency=first.currency,
            unit=first.unit,
            points=[PriceInput(p.start, p.duration_s, p.price) for p in mapped.prices],
            actor=OPENADR,
            now=now,
            settings=settings,
        )
    else:
        changed |= prices.withdraw_series(
            session, source=PRICE_SOURCE, series_id=mapped.vtn_event_id, actor=OPENADR, now=now
        )
    reason = None
    if not mapped.targeted:
        reason = "not targeted at this VEN or its resources"
    elif mapped.nodes and mapped.intervals and not intervals:
        reason = f"targets nodes unknown here: {', '.join(mapped.nodes)}"
    elif not mapped.intervals and not mapped.prices:
        reason = "asks for nothing this VEN acts on"
        if mapped.ignored_payload_types:
            reason += f" (unsupported payloads: {', '.join(mapped.ignored_payload_types)})"
    return changed, event_id, reason


def _scoped(session: Session, mapped: MappedEvent) -> tuple[IntervalSpec, ...]:
    """The event's intervals, once per targeted node (with its id) when it targets nodes."""
    if not mapped.nodes:
        return mapped.intervals
    ids = _node_ids(session, mapped.nodes)
    return tuple(replace(i, node_id=node_id) for node_id in ids for i in mapped.intervals)


def _node_ids(session: Session, names: Sequence[str]) -> tuple[int, ...]:
    found = (nodes_repository.get_by_name(session, name) for name in names)
    return tuple(node.id for node in found if node is not None)


def _new_record(session: Session, vtn_id: str, raw: dict[str, Any], now: datetime) -> OpenAdrEvent:
    """Insert the record of a newly seen event; if a concurrent writer (a poll and a webhook
    notification at once) inserted it first, use theirs."""
    record = OpenAdrEvent(
        vtn_event_id=vtn_id[:128],
        first_seen_at=now,
        last_seen_at=now,
        state=OpenAdrEventState.IGNORED,
        raw=raw,
        ignored_payload_types=[],
        reports_posted=[],
        report_done=False,
    )
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        existing = get_record(session, vtn_id)
        if existing is None:
            raise
        return existing
    return record


def _digest(mapped: MappedEvent, node_ids: tuple[int, ...]) -> str:
    content = (
        node_ids,
        mapped.name,
        mapped.priority,
        mapped.targeted,
        mapped.ignored_payload_types,
        mapped.nodes,
        [(i.start.isoformat(), i.duration_s, i.kind.value, i.value) for i in mapped.intervals],
    )
    return hashlib.sha256(repr(content).encode()).hexdigest()


def ingest_vtn_event(
    session: Session,
    raw: dict[str, Any],
    *,
    now: datetime,
    settings: GridlinkSettings,
    targets: frozenset[str],
    known: dict[str, OpenAdrEvent] | None = None,
) -> bool:
    """Record and apply one VTN event; True when a gridlink event changed. Never raises for a
    bad event: it is recorded as rejected (a previously accepted version keeps applying).
    ``known``: the records already loaded by id (a poll loads them in one query)."""
    vtn_id = raw.get("id")
    if not isinstance(vtn_id, str) or not vtn_id:
        log.warning("OpenADR event without an id ignored: %.200s", raw)
        return False
    record = known.get(vtn_id) if known is not None else get_record(session, vtn_id)
    if record is None:
        record = _new_record(session, vtn_id, raw, now)
    record.last_seen_at, record.raw = now, raw
    record.program_id = str(raw.get("programID"))[:128] if raw.get("programID") else None
    followed = settings.openadr_program_ids
    if followed and record.program_id not in followed:
        record.state, record.reason = OpenAdrEventState.IGNORED, "program not followed"
        session.flush()
        return False
    ctx = context(settings, received_at=record.first_seen_at, now=now, targets=targets)
    try:
        mapped = map_event(raw, ctx)
        digest = _digest(mapped, _node_ids(session, mapped.nodes))
        if (
            digest == record.mapped_digest
            and not mapped.prices  # prices are re-evaluated: the policy and the fleet change
            and record.state in (OpenAdrEventState.ACCEPTED, OpenAdrEventState.IGNORED)
        ):
            return False
        with session.begin_nested():
            changed, event_id, reason = _apply(session, mapped, now=now, settings=settings)
    except (EventRejected, InvalidInputError) as err:
        reason = err.reason if isinstance(err, EventRejected) else str(err)
        if record.state is not OpenAdrEventState.REJECTED or record.reason != reason[:512]:
            log.warning("OpenADR event %s rejected: %s", vtn_id, reason)
        record.state, record.reason = OpenAdrEventState.REJECTED, reason[:512]
        record.mapped_digest = None
        session.flush()
        return False
    record.state = OpenAdrEventState.IGNORED if reason else OpenAdrEventState.ACCEPTED
    record.reason, record.mapped_digest = reason, digest
    record.event_id = event_id
    record.ignored_payload_types = list(mapped.ignored_payload_types)
    session.flush()
    return changed


def delete_vtn_event(session: Session, vtn_event_id: str, *, now: datetime) -> bool:
    """The VTN deleted the event: cancel what it asked for (records stay)."""
    record = get_record(session, vtn_event_id)
    if record is None or record.state is OpenAdrEventState.DELETED:
        return False
    record.state, record.reason = OpenAdrEventState.DELETED, "deleted by the VTN"
    cancelled = cancel_current(
        session, EventSource.OPENADR, vtn_event_id, actor=OPENADR, now=now, action="openadr.delete"
    )
    changed = prices.withdraw_series(
        session, source=PRICE_SOURCE, series_id=vtn_event_id, actor=OPENADR, now=now
    )
    session.flush()
    log.info("OpenADR event %s deleted by the VTN", vtn_event_id)
    return cancelled is not None or changed


ENDED = "ended; no longer listed by the VTN"


def _has_ended(
    record: OpenAdrEvent, *, now: datetime, settings: GridlinkSettings, targets: frozenset[str]
) -> bool:
    """Whether every interval of an accepted event is over (an open-ended one never is)."""
    if record.state is not OpenAdrEventState.ACCEPTED:
        return False
    ctx = context(settings, received_at=record.first_seen_at, now=now, targets=targets)
    try:
        windows = map_event(record.raw, ctx).windows
    except EventRejected:
        return False
    return bool(windows) and max(w.end for w in windows) <= now


def sync_poll(
    session: Session,
    events: Sequence[dict[str, Any]],
    *,
    program_ids: Sequence[str] | None,
    now: datetime,
    settings: GridlinkSettings,
    targets: frozenset[str],
) -> SyncResult:
    """Apply a complete poll: every listed event, and deletion of known events no longer
    listed (within the polled programs when ``program_ids`` is given)."""
    result = SyncResult()
    known = {r.vtn_event_id: r for r in session.scalars(select(OpenAdrEvent))}
    listed = set()
    for raw in events:
        listed.add(raw.get("id"))
        if ingest_vtn_event(session, raw, now=now, settings=settings, targets=targets, known=known):
            result.changed += 1
        record = known.get(str(raw.get("id"))) or get_record(session, str(raw.get("id")))
        if record is not None:
            known[record.vtn_event_id] = record
            result.rejected += record.state is OpenAdrEventState.REJECTED
    for record in list(known.values()):
        if record.vtn_event_id in listed or record.state is OpenAdrEventState.DELETED:
            continue
        if program_ids is not None and record.program_id not in program_ids:
            continue
        if _has_ended(record, now=now, settings=settings, targets=targets):
            record.reason = ENDED  # VTNs may stop listing transpired events: not a deletion
            continue
        result.deleted += 1
        if delete_vtn_event(session, record.vtn_event_id, now=now):
            result.changed += 1
    return result


def list_records(session: Session, *, limit: int, offset: int) -> list[OpenAdrEvent]:
    stmt = select(OpenAdrEvent).order_by(OpenAdrEvent.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(stmt))
