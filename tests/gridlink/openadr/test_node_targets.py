"""An event targeted at one of this VEN's node resources limits that node, not the facility."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.models.event import EventInterval
from gridlink.models.openadr import OpenAdrEvent
from gridlink.openadr.ven import OpenAdrVen
from tests.gridlink.conftest import T0, Api, iso
from tests.gridlink.openadr.conftest import event_body, ven_settings
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import VtnServer

START = T0 + timedelta(hours=1)
KW = [{"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "IMPORT_CAPACITY_LIMIT"}]


def _limit(kw: float) -> list[dict[str, Any]]:
    return [{"type": "IMPORT_CAPACITY_LIMIT", "values": [kw]}]


@pytest.fixture
def nodes_ven(
    api: Api, vtn_server: VtnServer, factory: sessionmaker[Session]
) -> Iterator[OpenAdrVen]:
    settings = ven_settings(api, vtn_server.url, openadr_resources="nodes")
    ven = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    yield ven
    ven.close()


def _power_during(api: Api, node_id: int, at: datetime) -> float:
    allocation = api.request("GET", f"/v1/nodes/{node_id}/allocation").json()
    (segment,) = [
        s
        for s in allocation["segments"]
        if datetime.fromisoformat(s["start"]) <= at < datetime.fromisoformat(s["end"])
    ]
    return float(segment["power_w"])


def _facility_limit(api: Api, at: datetime) -> tuple[float, list[Any]]:
    timeline = api.request("GET", "/v1/timeline", params={"start": iso(T0)}).json()
    (segment,) = [
        s
        for s in timeline["segments"]
        if datetime.fromisoformat(s["start"]) <= at < datetime.fromisoformat(s["end"])
    ]
    return segment["facility_limit_kw"], segment["contributing_events"]


def test_a_node_targeted_event_limits_that_node_only(
    api: Api, vtn: FakeVtn, nodes_ven: OpenAdrVen, db_session: Session
) -> None:
    n1, n2 = api.register_node("n1"), api.register_node("n2")
    vtn.put_event("ev-1", event_body(START, _limit(3), payloadDescriptors=KW, targets=["n1"]))
    assert nodes_ven.poll()
    during = START + timedelta(minutes=30)
    assert _power_during(api, n1["id"], during) == 3000.0
    assert _power_during(api, n2["id"], during) == 6000.0  # its maximum: untouched
    assert _power_during(api, n1["id"], START - timedelta(minutes=1)) == 6000.0
    limit_kw, contributing = _facility_limit(api, during)
    assert limit_kw == api.settings.facility_max_kw and contributing == []
    db_session.expire_all()
    (interval,) = db_session.scalars(select(EventInterval)).all()
    assert interval.node_id == n1["id"]
    assert vtn.violations == []


def test_a_target_naming_the_ven_limits_the_facility(
    api: Api, vtn: FakeVtn, nodes_ven: OpenAdrVen
) -> None:
    api.register_node("n1")
    vtn.put_event(
        "ev-1", event_body(START, _limit(9), payloadDescriptors=KW, targets=["n1", "gridlink"])
    )
    assert nodes_ven.poll()
    limit_kw, contributing = _facility_limit(api, START + timedelta(minutes=30))
    assert limit_kw == 9.0 and len(contributing) == 1


def test_an_event_for_another_vens_node_is_not_acted_on(
    api: Api, vtn: FakeVtn, nodes_ven: OpenAdrVen, db_session: Session
) -> None:
    api.register_node("n1")
    vtn.put_event("ev-1", event_body(START, _limit(3), payloadDescriptors=KW, targets=["n7"]))
    assert nodes_ven.poll()
    db_session.expire_all()
    records = db_session.scalars(select(OpenAdrEvent)).all()
    # the VTN does not even show it (read_targets); had it, it would be recorded, not applied
    assert all(r.reason == "not targeted at this VEN or its resources" for r in records)
    assert db_session.scalars(select(EventInterval)).all() == []
