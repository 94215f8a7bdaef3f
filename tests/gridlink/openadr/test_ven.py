"""The VEN against the fake VTN over HTTP: events in, curtailment out, reports back."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.models.event import Event, EventSource, EventStatus
from gridlink.models.openadr import OpenAdrEvent, OpenAdrEventState
from gridlink.openadr.ven import OpenAdrVen
from tests.gridlink.conftest import T0, Api, iso
from tests.gridlink.openadr.conftest import PROGRAM, event_body, ven_settings
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import VtnServer

LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [60]}]
KW = [
    {
        "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
        "payloadType": "IMPORT_CAPACITY_LIMIT",
        "units": "KW",
    }
]


def _openadr_events(session: Session, external_id: str) -> list[Event]:
    session.expire_all()  # the VEN wrote through its own sessions
    stmt = select(Event).where(
        Event.source == EventSource.OPENADR, Event.external_id == external_id
    )
    return list(session.scalars(stmt.order_by(Event.version)))


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _timeline(api: Api) -> list[dict[str, Any]]:
    response = api.request("GET", "/v1/timeline", params={"start": iso(T0)})
    assert response.status_code == 200, response.text
    segments: list[dict[str, Any]] = response.json()["segments"]
    return segments


def test_an_event_on_the_vtn_curtails_the_facility_and_the_nodes(
    api: Api, vtn: FakeVtn, ven: OpenAdrVen
) -> None:
    node = api.register_node("n1")
    start = T0 + timedelta(hours=1)
    vtn.put_event("ev-1", event_body(start, LIMIT, payloadDescriptors=KW, eventName="peak"))

    assert ven.poll()

    segment = next(s for s in _timeline(api) if _at(s["start"]) == start)
    assert segment["facility_limit_kw"] == 60.0
    assert segment["contributing_events"][0]["source"] == "openadr"
    assert "peak" in segment["contributing_events"][0]["name"]
    allocation = api.request("GET", f"/v1/nodes/{node['id']}/allocation").json()
    during = [s for s in allocation["segments"] if _at(s["start"]) <= start < _at(s["end"])]
    assert during and during[0]["power_w"] <= (60.0 - api.settings.facility_overhead_kw) * 1000
    assert api.publisher.published  # the new budget version went out to the streams
    assert vtn.violations == []
    # registered itself and the facility as one resource
    assert [v["venName"] for v in vtn.vens.values()] == ["gridlink"]
    assert [r["resourceName"] for r in vtn.resources.values()] == ["facility"]


def test_modified_then_deleted(api: Api, vtn: FakeVtn, ven: OpenAdrVen) -> None:
    start = T0 + timedelta(hours=1)
    vtn.put_event("ev-1", event_body(start, LIMIT, payloadDescriptors=KW))
    ven.poll()
    vtn.put_event(
        "ev-1",
        event_body(
            start, [{"type": "IMPORT_CAPACITY_LIMIT", "values": [45]}], payloadDescriptors=KW
        ),
    )
    ven.poll()
    versions = _openadr_events(api.session, "ev-1")
    assert [(e.version, e.is_current) for e in versions] == [(1, False), (2, True)]
    assert versions[1].intervals[0].value == 45.0

    vtn.delete_event("ev-1")
    ven.poll()
    current = _openadr_events(api.session, "ev-1")[-1]
    assert current.status is EventStatus.CANCELLED
    assert all(s["facility_limit_kw"] == 100.0 for s in _timeline(api))
    api.session.expire_all()
    record = api.session.scalars(select(OpenAdrEvent)).one()
    assert record.state is OpenAdrEventState.DELETED


def test_paging_with_duplicates_gives_one_record_per_event(
    api: Api, vtn: FakeVtn, ven: OpenAdrVen
) -> None:
    vtn.duplicate_pages = True
    for n in range(120):
        start = T0 + timedelta(hours=2, minutes=n)
        vtn.put_event(f"ev-{n:03d}", event_body(start, LIMIT, payloadDescriptors=KW))
    ven.poll()
    ven.poll()  # the same events twice: still one record each
    records = api.session.scalars(select(OpenAdrEvent)).all()
    assert len(records) == 120
    assert {r.state for r in records} == {OpenAdrEventState.ACCEPTED}
    events = api.session.scalars(select(Event).where(Event.source == EventSource.OPENADR)).all()
    assert len(events) == 120
    assert all(limit <= 50 for limit in _limits_used(vtn))
    assert vtn.violations == []


def _limits_used(vtn: FakeVtn) -> list[int]:
    return [50 for method, path in vtn.requests if method == "GET" and path == "/events"]


def test_an_invalid_event_is_rejected_and_does_not_stop_the_others(
    api: Api, vtn: FakeVtn, ven: OpenAdrVen
) -> None:
    start = T0 + timedelta(hours=1)
    vtn.put_event("bad", event_body(start, [{"type": "SIMPLE", "values": [7]}]))
    vtn.put_event("good", event_body(start, LIMIT, payloadDescriptors=KW))
    vtn.put_event("odd", event_body(start, [{"type": "X_VENDOR_THING", "values": ["a"]}]))
    ven.poll()
    states = {r.vtn_event_id: r for r in api.session.scalars(select(OpenAdrEvent))}
    assert states["bad"].state is OpenAdrEventState.REJECTED
    assert "SIMPLE" in (states["bad"].reason or "")
    assert states["good"].state is OpenAdrEventState.ACCEPTED
    assert states["odd"].state is OpenAdrEventState.IGNORED
    assert states["odd"].ignored_payload_types == ["X_VENDOR_THING"]
    listed = api.request("GET", "/v1/openadr/events").json()
    assert {e["vtn_event_id"]: e["state"] for e in listed} == {
        "bad": "rejected",
        "good": "accepted",
        "odd": "ignored",
    }


def test_the_vtn_killed_and_restarted_mid_event(
    api: Api, vtn: FakeVtn, vtn_server: VtnServer, ven: OpenAdrVen
) -> None:
    start = T0 + timedelta(minutes=10)
    vtn.put_event("ev-1", event_body(start, LIMIT, payloadDescriptors=KW))
    assert ven.poll()
    api.clock.advance(minutes=20)  # in the middle of the event
    vtn_server.stop()
    assert not ven.poll()  # VTN down: backoff, nothing crashes
    assert ven.poll_backoff.failures == 1
    assert not ven.poll()  # still backing off: no attempt at all
    assert any(s["facility_limit_kw"] == 60.0 for s in _timeline(api))  # still followed

    vtn.put_event(
        "ev-1",
        event_body(
            start, [{"type": "IMPORT_CAPACITY_LIMIT", "values": [50]}], payloadDescriptors=KW
        ),
    )
    vtn.put_event("ev-2", event_body(start + timedelta(hours=2), LIMIT, payloadDescriptors=KW))
    vtn_server.start()
    api.clock.advance(seconds=api.settings.openadr_backoff_max_s + 1)
    assert ven.poll()  # catch-up: the change made while it was down, and the new event
    assert ven.poll_backoff.failures == 0
    assert _openadr_events(api.session, "ev-1")[-1].intervals[0].value == 50.0
    assert _openadr_events(api.session, "ev-2")


def test_5xx_backs_off_with_jitter_and_recovers(api: Api, vtn: FakeVtn, ven: OpenAdrVen) -> None:
    vtn.fail_with = 503
    delays = []
    for _ in range(4):
        assert not ven.poll()
        assert ven.poll_backoff.next_at is not None
        delays.append((ven.poll_backoff.next_at - api.clock.now).total_seconds())
        api.clock.set(ven.poll_backoff.next_at)
    base = api.settings.openadr_poll_interval_s
    for n, delay in enumerate(delays):
        ceiling = min(api.settings.openadr_backoff_max_s, base * 2**n)
        assert 0.5 * ceiling <= delay <= ceiling
    vtn.fail_with = None
    assert ven.poll()


def test_the_token_is_cached_and_renewed_after_a_401(
    api: Api, vtn: FakeVtn, ven: OpenAdrVen
) -> None:
    ven.poll()
    ven.poll()
    assert vtn.tokens_issued == 1
    vtn.tokens.clear()  # the VTN forgets every token (restart, revocation)
    assert ven.poll()
    assert vtn.tokens_issued == 2


def test_a_report_is_posted_back_after_the_event(api: Api, vtn: FakeVtn, ven: OpenAdrVen) -> None:
    node = api.register_node("n1")
    start = T0 + timedelta(minutes=30)
    descriptors = [
        {"payloadType": p, "readingType": r, "units": u}
        for p, r, u in (
            ("USAGE", "DIRECT_READ", "KWH"),
            ("DEMAND", "MEAN", "KW"),
            ("BASELINE", "ESTIMATED", "KW"),
            ("DELTA_USAGE", "ESTIMATED", "KWH"),
            ("LOAD_SHED_DELTA_AVAILABLE", "ESTIMATED", "KW"),
        )
    ]
    vtn.put_event(
        "ev-1", event_body(start, LIMIT, payloadDescriptors=KW, reportDescriptors=descriptors)
    )
    ven.poll()
    # telemetry: 80 kW of GPUs before the event, 50 kW during it
    samples = [
        {
            "ts": iso(T0 + timedelta(minutes=m)),
            "power_w": 80_000.0 if m < 30 else 50_000.0,
            "throughput_tok_s": 1000.0,
        }
        for m in range(0, 90, 1)
    ]
    api.clock.set(T0 + timedelta(minutes=91))
    response = api.request("POST", f"/v1/nodes/{node['id']}/telemetry", json={"samples": samples})
    assert response.status_code in (200, 201, 202), response.text
    assert ven.report() == 1
    assert ven.report() == 0  # posted once
    assert vtn.violations == []
    (report,) = vtn.reports
    assert report["eventID"] == "ev-1"
    assert report["clientName"] == "gridlink"
    assert {d["payloadType"] for d in report["payloadDescriptors"]} == {
        d["payloadType"] for d in descriptors
    }
    (interval,) = report["resources"][0]["intervals"]
    values = {p["type"]: p["values"][0] for p in interval["payloads"]}
    overhead = api.settings.facility_overhead_kw
    assert values["DEMAND"] == 50.0 + overhead
    assert values["USAGE"] == 50.0 + overhead  # one hour
    assert values["BASELINE"] == 80.0 + overhead  # pre-event average
    assert values["DELTA_USAGE"] == -30.0
    assert values["LOAD_SHED_DELTA_AVAILABLE"] >= 0
    assert _at(interval["intervalPeriod"]["start"]) == start
    assert interval["intervalPeriod"]["duration"] == "PT3600S"


def test_events_of_other_programs_and_targets(api: Api, vtn: FakeVtn, ven: OpenAdrVen) -> None:
    vtn.add_program("prog-2")
    start = T0 + timedelta(hours=1)
    vtn.put_event(
        "other", {**event_body(start, LIMIT, payloadDescriptors=KW), "programID": "prog-2"}
    )
    vtn.put_event("not-us", event_body(start, LIMIT, payloadDescriptors=KW, targets=["ven-b"]))
    vtn.put_event("us", event_body(start, LIMIT, payloadDescriptors=KW, targets=["facility"]))
    untargeted = vtn.put_event("all", event_body(start, LIMIT, payloadDescriptors=KW))
    ven.poll()
    states = {r.vtn_event_id: r.state for r in api.session.scalars(select(OpenAdrEvent))}
    # 'us' is shown only to a client naming its target (read_targets); 'not-us' never
    assert states == {"us": OpenAdrEventState.ACCEPTED, "all": OpenAdrEventState.ACCEPTED}
    assert untargeted["id"] == "all"


def test_targeted_events_are_invisible_without_the_targets_query(
    api: Api, vtn: FakeVtn, vtn_server: VtnServer, factory: sessionmaker[Session]
) -> None:
    start = T0 + timedelta(hours=1)
    vtn.put_event("us", event_body(start, LIMIT, payloadDescriptors=KW, targets=["gridlink"]))
    settings = ven_settings(api, vtn_server.url, openadr_query_targets=False)
    blind = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    assert blind.poll()
    blind.close()
    assert api.session.scalars(select(OpenAdrEvent)).all() == []
    # the VEN's own filter still ignores events targeted elsewhere when a VTN shows them
    stray = event_body(start, LIMIT, payloadDescriptors=KW, targets=["ven-b"])
    raw = {"id": "stray", "createdDateTime": "2026-07-01T00:00:00Z", **stray}
    raw |= {"modificationDateTime": "2026-07-01T00:00:00Z", "objectType": "EVENT"}
    seeing = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    seeing.ingest([raw], program_ids=None, reason="test")
    seeing.close()
    api.session.expire_all()
    (record,) = api.session.scalars(select(OpenAdrEvent)).all()
    assert (record.state, record.reason) == (
        OpenAdrEventState.IGNORED,
        "not targeted at this VEN or its resources",
    )


def test_a_slow_vtn_times_out_and_is_retried_later(
    api: Api, vtn: FakeVtn, vtn_server: VtnServer, factory: sessionmaker[Session]
) -> None:
    settings = ven_settings(api, vtn_server.url, openadr_timeout_s=0.3)
    slow = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    vtn.delay_s = 1.0
    assert not slow.poll()
    assert slow.poll_backoff.failures == 1
    vtn.delay_s = 0.0
    time.sleep(1.0)  # the fake VTN finishes answering the request the VEN gave up on
    api.clock.advance(seconds=settings.openadr_backoff_max_s + 1)
    assert slow.poll()
    slow.close()


def test_an_open_ended_event_is_reported_up_to_its_deletion(
    api: Api, vtn: FakeVtn, ven: OpenAdrVen
) -> None:
    node = api.register_node("n1")
    body = {
        "programID": PROGRAM,
        "intervalPeriod": {"start": "0001-01-01T00:00:00Z", "duration": "P9999Y"},
        "intervals": [
            {"id": 1, "payloads": [{"type": "ALERT_GRID_EMERGENCY", "values": ["storm"]}]}
        ],
        "reportDescriptors": [{"payloadType": "DEMAND", "readingType": "MEAN", "units": "KW"}],
    }
    vtn.put_event("alert", body)
    api.clock.set(T0 + timedelta(minutes=5))
    ven.poll()  # first seen now: the alert starts at T0 + 5 min
    samples = [
        {"ts": iso(T0 + timedelta(minutes=m)), "power_w": 40_000.0, "throughput_tok_s": 500.0}
        for m in range(5, 36)
    ]
    api.clock.set(T0 + timedelta(minutes=35))
    api.request("POST", f"/v1/nodes/{node['id']}/telemetry", json={"samples": samples})
    ven.poll()
    assert ven.report() == 0  # still in force: nothing to report yet
    vtn.delete_event("alert")
    api.clock.set(T0 + timedelta(minutes=40))
    ven.poll()
    assert ven.report() == 1
    (interval,) = vtn.reports[0]["resources"][0]["intervals"]
    assert _at(interval["intervalPeriod"]["start"]) == T0 + timedelta(minutes=5)
    assert interval["intervalPeriod"]["duration"] == "PT1800S"  # up to the last poll that saw it
    assert interval["payloads"] == [
        {"type": "DEMAND", "values": [40.0 + api.settings.facility_overhead_kw]}
    ]
    assert vtn.violations == []


def test_nodes_mode_registers_every_node_and_later_ones(
    api: Api, vtn: FakeVtn, vtn_server: VtnServer, factory: sessionmaker[Session]
) -> None:
    api.register_node("gpu-a")
    settings = ven_settings(api, vtn_server.url, openadr_resources="nodes")
    ven = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    assert ven.poll()
    api.register_node("gpu-b")
    assert ven.poll()
    assert ven.poll()
    ven.close()
    assert sorted(r["resourceName"] for r in vtn.resources.values()) == ["gpu-a", "gpu-b"]
    assert len(vtn.vens) == 1
    # an event targeting one node applies (to the facility)
    start = T0 + timedelta(hours=1)
    vtn.put_event("ev-node", event_body(start, LIMIT, payloadDescriptors=KW, targets=["gpu-b"]))
    ven2 = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    assert ven2.poll()
    ven2.close()
    assert _openadr_events(api.session, "ev-node")
    assert vtn.violations == []


def test_a_report_is_kept_while_the_vtn_is_down_and_posted_once_it_is_back(
    api: Api, vtn: FakeVtn, ven: OpenAdrVen
) -> None:
    node = api.register_node("n1")
    start = T0 + timedelta(minutes=10)
    descriptors = [{"payloadType": "DEMAND", "readingType": "MEAN", "units": "KW"}]
    vtn.put_event(
        "ev-1", event_body(start, LIMIT, payloadDescriptors=KW, reportDescriptors=descriptors)
    )
    ven.poll()
    samples = [
        {"ts": iso(T0 + timedelta(minutes=m)), "power_w": 30_000.0, "throughput_tok_s": 1.0}
        for m in range(0, 75)
    ]
    api.clock.set(T0 + timedelta(minutes=80))
    api.request("POST", f"/v1/nodes/{node['id']}/telemetry", json={"samples": samples})
    vtn.fail_with = 503
    assert ven.report() == 0
    assert ven.report_backoff.failures == 1
    vtn.fail_with = None
    api.clock.advance(seconds=api.settings.openadr_backoff_max_s + 1)
    assert ven.report() == 1
    assert len(vtn.reports) == 1
    assert vtn.violations == []
