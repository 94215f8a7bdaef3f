"""Automatic corrections: telemetry stored after its window was reported regenerates the report.

Telemetry ingestion records every batch that carried samples stored more than two minutes after
their time (``telemetry_late_arrivals``, written in the samples' own transaction, so none is
lost; agents push every few seconds). So every report generated at least two minutes after its
window ended, which includes every scheduled one (they wait the settlement delay), is corrected
whenever telemetry it lacked arrives. The
scheduler leader's report check matches these records to the latest version of every stored
report whose window, pre-event window included, holds one of those samples, and regenerates the
report once no more late telemetry for it has arrived for ``report_correction_debounce_s`` (a
node replaying an hour of spool in many batches makes one correction, not one per batch), or
at the latest ten debounce periods after the first record, so a node that is always late cannot
hold a correction back forever.

Regenerating stores a new version, linked to the previous one, only when the inputs changed
(:func:`gridlink.reports.service.store`): a replay of samples already stored changes nothing.

Restart-safe: a record is deleted only after every report it touches was regenerated and
committed; a leader that dies in between leaves the records, and the next check regenerates
again, which stores nothing new for a report already corrected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth.principal import SYSTEM
from gridlink.db.engine import session_scope
from gridlink.errors import GridlinkError, NotFoundError
from gridlink.reports import repository, service
from gridlink.reports.inputs import ReportInputs
from gridlink.reports.repository import StoredReport
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)

MAX_WAIT_DEBOUNCES = 10


@dataclass
class Pending:
    """One report subject touched by late telemetry, and the records that touched it."""

    report: StoredReport
    arrival_ids: list[int] = field(default_factory=list)
    first_stored_at: datetime | None = None
    last_stored_at: datetime | None = None

    def add(self, arrival_id: int, stored_at: datetime) -> None:
        self.arrival_ids.append(arrival_id)
        if self.first_stored_at is None or stored_at < self.first_stored_at:
            self.first_stored_at = stored_at
        if self.last_stored_at is None or stored_at > self.last_stored_at:
            self.last_stored_at = stored_at

    def due(self, now: datetime, debounce: timedelta) -> bool:
        assert self.first_stored_at is not None and self.last_stored_at is not None
        quiet = self.last_stored_at <= now - debounce
        return quiet or self.first_stored_at <= now - debounce * MAX_WAIT_DEBOUNCES


def pending_corrections(
    session: Session, *, now: datetime, settings: GridlinkSettings
) -> tuple[list[Pending], list[int]]:
    """The subjects due a regeneration, and the ids of the late-arrival records that wait for
    nothing else (settled by those regenerations, or touching no stored report)."""
    arrivals = repository.late_arrivals(session)
    if not arrivals:
        return [], []
    lead = timedelta(minutes=settings.report_pre_event_window_min)
    reports = repository.latest_versions_overlapping(
        session,
        start=min(a.first_ts for a in arrivals),
        end=max(a.last_ts for a in arrivals),
        lead=lead,
    )
    touched: dict[str, Pending] = {}
    for arrival in arrivals:
        for report in reports:
            if report.window_start - lead <= arrival.last_ts and arrival.first_ts < (
                report.window_end
            ):
                pending = touched.setdefault(report.subject, Pending(report))
                pending.add(arrival.id, arrival.stored_at)
    debounce = timedelta(seconds=settings.report_correction_debounce_s)
    due = [p for p in touched.values() if p.due(now, debounce)]
    waiting = {i for p in touched.values() if not p.due(now, debounce) for i in p.arrival_ids}
    return due, [a.id for a in arrivals if a.id not in waiting]


def _inputs(session: Session, report: StoredReport, settings: GridlinkSettings) -> ReportInputs:
    if report.event_key is None:
        return service.window_inputs(
            session,
            report.window_start,
            report.window_end,
            interval_s=report.interval_s,
            settings=settings,
        )
    event_id = repository.event_id_for_key(session, report.event_key)
    if event_id is None:
        raise NotFoundError("event", report.event_key)
    return service.event_inputs(session, event_id, interval_s=report.interval_s, settings=settings)


def correct_reports(
    factory: sessionmaker[Session], *, now: datetime, settings: GridlinkSettings
) -> list[int]:
    """Regenerate every report due a correction, each in its own transaction, then delete the
    late-arrival records that are settled. Returns the ids of the new versions."""
    with session_scope(factory) as session:
        due, settled_ids = pending_corrections(session, now=now, settings=settings)
        for arrival in repository.late_arrivals(session):
            repository.forget_history(session, first=arrival.first_ts, last=arrival.last_ts)
    created = []
    for pending in due:
        subject = pending.report.subject
        try:
            with session_scope(factory) as session:
                inputs = _inputs(session, pending.report, settings)
                report, new = service.store(
                    session, inputs, trigger="correction", actor=SYSTEM, now=now
                )
                if new:
                    created.append(report.id)
        except IntegrityError:
            log.info("correction of %s stored concurrently", subject)
        except GridlinkError:
            log.exception("correction of %s failed; its late records are dropped", subject)
    with session_scope(factory) as session:
        repository.delete_late_arrivals(session, settled_ids)
    if created:
        log.info("stored %d corrected report version(s): %s", len(created), created)
    return created


__all__ = ["Pending", "correct_reports", "pending_corrections"]
