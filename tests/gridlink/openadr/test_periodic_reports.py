"""Periodic reports: a reportDescriptor's startInterval/numIntervals/frequency/repeat decide
when reports are posted during the event, restart-safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.models.openadr import OpenAdrEvent
from gridlink.openadr.schedule import descriptor_slots, due_slots
from gridlink.openadr.ven import OpenAdrVen
from tests.gridlink.conftest import T0, Api
from tests.gridlink.openadr.conftest import PROGRAM, iso_z, ven_settings
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import VtnServer
from tests.gridlink.reports.fleet import add_node, add_samples

T = datetime(2026, 7, 1, 12, tzinfo=UTC)


def _intervals(count: int, minutes: int = 15) -> list[tuple[int, datetime, datetime]]:
    step = timedelta(minutes=minutes)
    return [(100 + k, T + k * step, T + (k + 1) * step) for k in range(count)]


def _spans(descriptor: dict[str, Any], count: int) -> list[tuple[int, int]]:
    return [(s.first, s.last) for s in descriptor_slots(descriptor, _intervals(count))]


def test_the_user_guides_timings() -> None:
    usage = {"payloadType": "USAGE"}
    assert _spans(usage, 4) == [(0, 3)]  # defaults: one report after the last interval
    periodic = usage | {"startInterval": 1, "numIntervals": 2, "frequency": 2, "repeat": 3}
    assert _spans(periodic, 6) == [(0, 1), (2, 3), (4, 5)]
    assert _spans(periodic, 5) == [(0, 1), (2, 3)]  # no interval 5: no third report
    every = usage | {"numIntervals": 1, "frequency": 1, "repeat": -1}
    assert _spans(every, 4) == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert _spans(usage | {"frequency": 2, "repeat": -1}, 5) == [(0, 1), (2, 3)]
    assert _spans(usage | {"startInterval": 2, "numIntervals": 2}, 4) == [(1, 2)]
    assert _spans(usage | {"historical": False}, 4) == []  # forecasts: not supported


def test_due_slots_merge_descriptors_and_skip_what_was_posted() -> None:
    intervals = _intervals(4)
    every = {"numIntervals": 1, "frequency": 1, "repeat": -1}
    descriptors = [{"payloadType": "DEMAND"} | every, {"payloadType": "USAGE"} | every]
    due = due_slots(descriptors, intervals, now=T + timedelta(minutes=31), posted=set())
    assert [(s.first, s.payload_types) for s in due] == [
        (0, ("DEMAND", "USAGE")),
        (1, ("DEMAND", "USAGE")),
    ]
    again = due_slots(descriptors, intervals, now=T + timedelta(minutes=31), posted={due[0].key})
    assert [s.first for s in again] == [1]


def _event(start: datetime) -> dict[str, Any]:
    return {
        "programID": PROGRAM,
        "intervalPeriod": {"start": iso_z(start), "duration": "PT15M"},
        "intervals": [
            {"id": k, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [60]}]}
            for k in range(4)
        ],
        "reportDescriptors": [
            {
                "payloadType": "DEMAND",
                "readingType": "MEAN",
                "units": "KW",
                "numIntervals": 1,
                "frequency": 1,
                "repeat": -1,
            }
        ],
    }


def _ven(api: Api, url: str, factory: sessionmaker[Session]) -> OpenAdrVen:
    return OpenAdrVen(factory, ven_settings(api, url), api.publisher, clock=lambda: api.clock.now)


def test_reports_are_posted_during_the_event_and_survive_a_restart(
    api: Api,
    vtn: FakeVtn,
    vtn_server: VtnServer,
    factory: sessionmaker[Session],
    db_session: Session,
) -> None:
    start = T0 + timedelta(hours=1)
    node = add_node(db_session, "n1")
    add_samples(db_session, node.id, T0, start + timedelta(hours=1), power_w=3000.0)
    vtn.put_event("ev-1", _event(start))
    ven = _ven(api, vtn_server.url, factory)
    try:
        assert ven.poll()
        api.clock.set(start + timedelta(minutes=20))
        assert ven.report() == 1  # interval 0 has ended
        assert ven.report() == 0
        api.clock.set(start + timedelta(minutes=50))
        assert ven.report() == 2  # intervals 1 and 2 (the job missed one period)
    finally:
        ven.close()
    restarted = _ven(api, vtn_server.url, factory)  # a new leader: state is in the database
    try:
        assert restarted.report() == 0
        record = db_session.scalars(select(OpenAdrEvent)).one()
        db_session.refresh(record)
        assert not record.report_done  # interval 3 is still to come
        api.clock.set(start + timedelta(minutes=61))
        assert restarted.report() == 1
        assert restarted.report() == 0
    finally:
        restarted.close()
    db_session.refresh(record)
    assert record.report_done
    assert vtn.violations == []
    starts = [
        datetime.fromisoformat(r["resources"][0]["intervals"][0]["intervalPeriod"]["start"])
        for r in vtn.reports
    ]
    assert starts == [start + timedelta(minutes=15 * k) for k in range(4)]
    assert all(len(r["resources"][0]["intervals"]) == 1 for r in vtn.reports)
    assert [r["resources"][0]["intervals"][0]["id"] for r in vtn.reports] == [0, 1, 2, 3]
