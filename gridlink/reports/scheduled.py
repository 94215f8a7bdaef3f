"""Scheduled reports: every event gets its reports once it ended ``report_settlement_delay_s``
ago, one per interval in ``report_scheduled_intervals_s``. Run by the scheduler leader.

Restart-safe the way the budget boundaries are: the database is the source of truth. A report is
due while its subject has no stored version, so a leader that dies mid-generation (nothing
committed) leaves it due and the next check (on this or a new leader) generates it; events that
ended while no gateway ran are caught up within ``report_catchup_days``. Two leaders briefly
overlapping cannot store two first versions: ``(subject, version)`` is unique, the loser's
transaction rolls back and it moves on.

Each check then stores the corrections late telemetry calls for (:mod:`.corrections`) and caches
the facility history of the days that settled (:func:`.history.fill_settled_days`), which the
high-X-of-Y baseline of later reports reads.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth.principal import SYSTEM
from gridlink.db.engine import session_scope
from gridlink.errors import GridlinkError
from gridlink.reports import corrections, history, repository, service
from gridlink.reports.lineage import event_key, event_window
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)


def due_reports(
    session: Session, *, now: datetime, settings: GridlinkSettings
) -> list[tuple[int, int]]:
    """``(event_id, interval_s)`` of every report due and not yet stored, oldest event first."""
    delay = timedelta(seconds=settings.report_settlement_delay_s)
    oldest = now - timedelta(days=settings.report_catchup_days)
    due: list[tuple[int, int, str]] = []
    for event in repository.events_ended_between(session, after=oldest - delay, until=now):
        window = event_window(repository.lineage(session, event.id))
        if window is None:
            continue  # cancelled before it began: nothing was asked
        end = window[1]
        if not oldest <= end <= now - delay:
            continue
        for interval_s in settings.report_scheduled_intervals_s:
            due.append((event.id, interval_s, f"event:{event_key(event)}@{interval_s}"))
    stored = repository.subjects_with_reports(session, [subject for *_, subject in due])
    return [(event_id, interval_s) for event_id, interval_s, s in due if s not in stored]


def generate_due(
    factory: sessionmaker[Session], *, now: datetime, settings: GridlinkSettings
) -> list[int]:
    """Generate every due report, each in its own transaction, then the corrections late
    telemetry calls for (:mod:`gridlink.reports.corrections`). Returns the new report ids."""
    with session_scope(factory) as session:
        due = due_reports(session, now=now, settings=settings)
    created = []
    for event_id, interval_s in due:
        try:
            with session_scope(factory) as session:
                inputs = service.event_inputs(
                    session, event_id, interval_s=interval_s, settings=settings
                )
                if repository.latest_for_subject(session, inputs.subject) is not None:
                    continue  # another leader got there first
                report, _ = service.store(
                    session, inputs, trigger="scheduled", actor=SYSTEM, now=now
                )
                created.append(report.id)
        except IntegrityError:
            log.info("report on event %s (%s s) stored concurrently", event_id, interval_s)
        except GridlinkError:
            log.exception("report on event %s (%s s) failed", event_id, interval_s)
    if created:
        log.info("generated %d scheduled report(s): %s", len(created), created)
    created += corrections.correct_reports(factory, now=now, settings=settings)
    try:
        with session_scope(factory) as session:
            history.fill_settled_days(session, now=now, settings=settings)
    except IntegrityError:
        log.info("history cache filled concurrently")
    return created
