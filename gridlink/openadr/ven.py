"""The VEN's jobs: register, subscribe, poll, report. I/O edge over ``service`` and ``reports``.

Each job is one method run by the scheduler on the leader (``jobs``); every state it needs
survives a restart in the database (events seen, reports posted, VTN-assigned ids). When the VTN
is down, slow or answers 5xx, the job backs off with jitter and the events already known keep
applying; the next successful poll catches up (new, changed and deleted events).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.budgets.events import BudgetPublisher
from gridlink.db.engine import session_scope
from gridlink.models.openadr import OpenAdrEvent, OpenAdrEventState
from gridlink.openadr import registration, service
from gridlink.openadr.auth import TokenSource
from gridlink.openadr.backoff import Backoff
from gridlink.openadr.errors import VtnError
from gridlink.openadr.figures import interval_figures
from gridlink.openadr.mapping import EventRejected, map_event
from gridlink.openadr.mqtt import MqttNotifications
from gridlink.openadr.reports import REPORTABLE, build_report, interval_windows
from gridlink.openadr.schedule import ReportSlot, due_slots
from gridlink.openadr.schema import object_errors
from gridlink.openadr.vtn import VtnClient
from gridlink.prices.recompute import recompute_and_publish
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OpenAdrVen:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: GridlinkSettings,
        publisher: BudgetPublisher,
        *,
        clock: Clock = _utcnow,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not settings.openadr_vtn_url:
            raise ValueError("openadr_vtn_url is required when the OpenADR VEN is enabled")
        self._factory = factory
        self._settings = settings
        self._publisher = publisher
        self._clock = clock
        self._http = httpx.Client(timeout=settings.openadr_timeout_s, transport=transport)
        secret, static = settings.openadr_client_secret, settings.openadr_bearer_token
        self.tokens = TokenSource(
            self._http,
            settings.openadr_vtn_url,
            client_id=settings.openadr_client_id,
            client_secret=None if secret is None else secret.get_secret_value(),
            style=settings.openadr_token_auth,
            scope=settings.openadr_token_scope,
            static_token=None if static is None else static.get_secret_value(),
        )
        self.vtn = VtnClient(
            self._http, settings.openadr_vtn_url, self.tokens, settings.openadr_page_limit
        )
        self.poll_backoff = Backoff(
            settings.openadr_poll_interval_s, settings.openadr_backoff_max_s
        )
        self.mqtt_backoff = Backoff(
            settings.openadr_poll_interval_s, settings.openadr_backoff_max_s
        )
        self.report_backoff = Backoff(
            settings.openadr_report_interval_s, settings.openadr_backoff_max_s
        )
        self.mqtt = MqttNotifications(
            self.vtn,
            self.tokens,
            program_ids=list(settings.openadr_program_ids),
            client_id=settings.openadr_client_id,
            on_notification=self.notify,
        )
        self._targets_query = True  # False once the VTN refused the targets query
        self._registered: list[str] | None = None  # resource names at the last registration

    def close(self) -> None:
        self.mqtt.close()
        self._http.close()

    def _targets(self) -> frozenset[str]:
        with session_scope(self._factory) as session:
            names = registration.resource_names(session, self._settings)
        return service.our_targets(self._settings, names)

    # -- jobs ---------------------------------------------------------------------------------

    def poll(self) -> bool:
        """One poll if the backoff allows it; True when it ran and succeeded."""
        now = self._clock()
        if not self.poll_backoff.ready(now):
            return False
        started = time.monotonic()
        try:
            with session_scope(self._factory) as session:
                names = registration.resource_names(session, self._settings)
            if self._settings.openadr_register and names != self._registered:
                # at start, and whenever the resources change (a node joined, in nodes mode)
                registration.register(self.vtn, self._factory, self._settings)
                self._registered = names
            program_ids = self._settings.openadr_program_ids or None
            events: list[dict[str, Any]] = []
            polled: list[str | None] = list(program_ids) if program_ids else [None]
            targets = sorted(service.our_targets(self._settings, names))
            for program_id in polled:
                events.extend(self.vtn.events(program_id))
                events.extend(self._targeted_events(program_id, targets))
        except VtnError as err:
            delay_s = self.poll_backoff.failed(now)
            log.warning("OpenADR poll failed (%s); next attempt in %.0f s", err, delay_s)
            return False
        self.poll_backoff.succeeded()
        unique = list({event["id"]: event for event in reversed(events)}.values())[::-1]
        self.ingest(unique, program_ids=program_ids, reason="OpenADR poll")
        log.debug("OpenADR poll: %d events in %.2f s", len(events), time.monotonic() - started)
        return True

    def _targeted_events(self, program_id: str | None, targets: list[str]) -> list[dict[str, Any]]:
        """The listing with the ``targets`` query; a VTN that refuses that query (400, 404,
        405, 501: openadr-rs answers 501 to target filters) is listed without it from then on."""
        if not self._settings.openadr_query_targets or not self._targets_query:
            return []
        try:
            return self.vtn.events(program_id, targets)
        except VtnError as err:
            if err.status not in (400, 404, 405, 501):
                raise
            log.warning("the VTN refuses the targets query (%s); polling without it", err)
            self._targets_query = False
            return []

    def ingest(
        self, events: list[dict[str, Any]], *, program_ids: list[str] | None, reason: str
    ) -> service.SyncResult:
        now = self._clock()
        targets = self._targets()

        def work(session: Session) -> str | None:
            result = service.sync_poll(
                session,
                events,
                program_ids=program_ids,
                now=now,
                settings=self._settings,
                targets=targets,
            )
            outcome.append(result)
            return f"{reason}: {result.changed} event(s) changed" if result.changed else None

        outcome: list[service.SyncResult] = []
        recompute_and_publish(self._factory, self._publisher, self._settings, now, work)
        return outcome[0]

    def notify(self, body: dict[str, Any]) -> bool:
        """One notification (from the MQTT notifier): the webhook's ingestion. True when a
        gridlink event changed; an invalid notification is logged and dropped."""
        errors = object_errors("notification", body)
        if errors:
            log.warning("OpenADR notification dropped: %s", errors[0])
            return False
        if body["objectType"] != "EVENT":
            return False
        obj, operation = body["object"], body["operation"]
        now = self._clock()
        targets = self._targets() if operation != "DELETE" else frozenset()
        outcome: list[bool] = []

        def work(session: Session) -> str | None:
            if operation == "DELETE":
                changed = service.delete_vtn_event(session, str(obj.get("id")), now=now)
            else:
                changed = service.ingest_vtn_event(
                    session, obj, now=now, settings=self._settings, targets=targets
                )
            outcome.append(changed)
            return f"OpenADR notification: {operation} event {obj.get('id')}" if changed else None

        recompute_and_publish(self._factory, self._publisher, self._settings, now, work)
        return outcome[0]

    def mqtt_ensure(self) -> bool:
        """The MQTT job: connected to the VTN's notifier when it has one (backoff on faults)."""
        now = self._clock()
        if not self.mqtt_backoff.ready(now):
            return False
        try:
            connected = self.mqtt.ensure()
        except VtnError as err:
            delay_s = self.mqtt_backoff.failed(now)
            log.warning("OpenADR MQTT notifier unavailable (%s); retry in %.0f s", err, delay_s)
            return False
        self.mqtt_backoff.succeeded()
        return connected

    def report(self) -> int:
        """Post every due report; returns how many were posted."""
        now = self._clock()
        if not self.report_backoff.ready(now):
            return 0
        posted = 0
        with session_scope(self._factory) as session:
            stmt = select(OpenAdrEvent).where(
                OpenAdrEvent.state.in_([OpenAdrEventState.ACCEPTED, OpenAdrEventState.DELETED]),
                OpenAdrEvent.report_done.is_(False),
            )
            due = list(session.scalars(stmt))
            targets = service.our_targets(
                self._settings, registration.resource_names(session, self._settings)
            )
            for record in due:
                try:
                    posted += self._report_one(session, record, now, targets)
                except VtnError as err:
                    delay_s = self.report_backoff.failed(now)
                    log.warning("OpenADR report failed (%s); retry in %.0f s", err, delay_s)
                    return posted
        self.report_backoff.succeeded()
        return posted

    def _report_one(
        self, session: Session, record: OpenAdrEvent, now: datetime, targets: frozenset[str]
    ) -> int:
        """Post the reports of ``record`` that are due (``schedule``); the event is done once
        it has ended and every report it asks for is posted (or refused, or empty)."""
        descriptors = [
            d
            for d in record.raw.get("reportDescriptors") or []
            if isinstance(d, dict) and d.get("payloadType") in REPORTABLE
        ]
        ctx = service.context(
            self._settings, received_at=record.first_seen_at, now=now, targets=targets
        )
        try:
            windows = list(map_event(record.raw, ctx).windows) if descriptors else []
        except EventRejected:
            windows = []
        if record.state is OpenAdrEventState.DELETED:  # it ended when the VTN deleted it
            cutoff = record.last_seen_at
            windows = [replace(w, end=min(w.end, cutoff)) for w in windows if w.start < cutoff]
        if not windows:
            record.report_done = True
            return 0
        intervals = interval_windows(windows)
        posted_keys = {str(p.get("slot")) for p in record.reports_posted if p.get("slot")}
        posted = 0
        for slot in due_slots(descriptors, intervals, now=now, posted=posted_keys):
            posted += self._post_slot(session, record, slot, intervals, descriptors, now)
        if max(end for _, _, end in intervals) <= now:
            record.report_done = True  # ended, and every slot is due: all handled above
        session.flush()
        return posted

    def _post_slot(
        self,
        session: Session,
        record: OpenAdrEvent,
        slot: ReportSlot,
        intervals: list[tuple[int, datetime, datetime]],
        descriptors: list[dict[str, Any]],
        now: datetime,
    ) -> int:
        """Post one report; raises a retryable VtnError (nothing recorded) to try again later."""
        chosen = intervals[slot.first : slot.last + 1]
        figures = interval_figures(
            session,
            self._settings,
            event_id=record.event_id,
            event_start=intervals[0][1],
            intervals=chosen,
        )
        body = build_report(
            session,
            vtn_event_id=record.vtn_event_id,
            descriptors=[d for d in descriptors if d["payloadType"] in slot.payload_types],
            intervals=chosen,
            figures=figures,
            resource_name=self._settings.openadr_facility_resource,
            client_name=self._settings.openadr_ven_name,
            settings=self._settings,
        )
        if body is not None and record.program_id:
            # Required by 3.0 VTNs (openadr-rs: reportRequest.programID); 3.1 dropped it from
            # the required fields but allows it (no additionalProperties: false).
            body = {"programID": record.program_id, **body}
        entry: dict[str, Any] = {"slot": slot.key, "at": now.isoformat(), "report_id": None}
        result = 0
        if body is None:
            log.info("OpenADR event %s: nothing to report for %s", record.vtn_event_id, slot.key)
            entry["outcome"] = "nothing to report"
        else:
            try:
                answer = self.vtn.request("POST", "/reports", json=body)
            except VtnError as err:
                if err.retryable:
                    raise  # not recorded: the next run posts it
                log.error("OpenADR event %s: report refused: %s", record.vtn_event_id, err)
                entry["outcome"] = f"refused: {err}"[:300]
            else:
                entry["report_id"] = answer.get("id") if isinstance(answer, dict) else None
                entry["outcome"] = "posted"
                result = 1
            entry["payload_types"] = sorted(
                {p["type"] for i in body["resources"][0]["intervals"] for p in i["payloads"]}
            )
            entry["baselines"] = sorted({f.source for f in figures})
        record.reports_posted = [*record.reports_posted, entry]
        session.flush()
        return result
