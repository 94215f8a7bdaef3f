"""The MQTT notifier binding against a real broker (Mosquitto on 127.0.0.1:1883): the fake VTN
publishes event notifications on its topics, the VEN ingests them without a poll."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker
from gridlink.models.event import Event, EventSource, EventStatus
from gridlink.openadr.errors import VtnError
from gridlink.openadr.mqtt import broker_address, event_topics
from gridlink.openadr.ven import OpenAdrVen
from tests.gridlink.conftest import T0, Api
from tests.gridlink.openadr.conftest import PROGRAM, event_body, ven_settings
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import VtnServer

BROKER = ("127.0.0.1", 1883)
LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [70]}]


def _wait(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the MQTT notification"
        time.sleep(0.05)


def test_event_notifications_arrive_over_mqtt(
    make_database: Callable[[str], str], vtn: FakeVtn, vtn_server: VtnServer, api: Api
) -> None:
    vtn.mqtt_broker = BROKER
    vtn.mqtt_prefix = f"gridlink-test/{secrets.token_hex(4)}/OpenADR/3.1.0"  # tests in parallel
    url = make_database("sqlite")
    migrate.upgrade(url)
    engine = build_engine(url)
    factory = build_sessionmaker(engine)
    settings = ven_settings(api, vtn_server.url, database_url=url, openadr_mqtt=True)
    ven = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    try:
        assert ven.mqtt_ensure()
        assert ven.mqtt.topics == [f"{vtn.mqtt_prefix}/programs/{PROGRAM}/events/+"]
        assert ven.mqtt_ensure()  # already connected: nothing to do

        vtn.put_event("ev-mqtt", event_body(T0 + timedelta(hours=1), LIMIT))
        _wait(lambda: ven.mqtt.received >= 1)
        with factory() as session:
            (event,) = session.scalars(select(Event).where(Event.source == EventSource.OPENADR))
            assert event.intervals[0].value == 70.0
        vtn.delete_event("ev-mqtt")
        _wait(lambda: ven.mqtt.received >= 2)
        with factory() as session:
            (event,) = session.scalars(select(Event).where(Event.source == EventSource.OPENADR))
            assert event.status is EventStatus.CANCELLED
    finally:
        ven.close()
        engine.dispose()
    assert ven.mqtt.received == 2  # the VEN's program topic only, not the global one too
    assert vtn.violations == []


def test_without_an_mqtt_binding_the_ven_keeps_to_polling(
    vtn: FakeVtn, vtn_server: VtnServer, api: Api, factory: sessionmaker[Session]
) -> None:
    settings = ven_settings(api, vtn_server.url, openadr_mqtt=True)
    ven = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    try:
        assert ven.mqtt_ensure() is False
        assert ven.mqtt_backoff.failures == 0
    finally:
        ven.close()


def test_an_unreachable_broker_backs_off(
    vtn: FakeVtn, vtn_server: VtnServer, api: Api, factory: sessionmaker[Session]
) -> None:
    vtn.mqtt_broker = ("127.0.0.1", 1)  # nothing listens there
    settings = ven_settings(api, vtn_server.url, openadr_mqtt=True)
    ven = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    try:
        assert ven.mqtt_ensure() is False
        assert ven.mqtt_backoff.failures == 1
    finally:
        ven.close()


def test_binding_parsing() -> None:
    assert broker_address("mqtt://broker.example:1884") == ("broker.example", 1884, False)
    assert broker_address("mqtts://broker.example") == ("broker.example", 8883, True)
    assert broker_address("tcp://localhost") == ("localhost", 1883, False)
    with pytest.raises(VtnError, match="expected mqtt"):
        broker_address("https://broker.example")
    topics = {"CREATE": "a/create", "UPDATE": "a/update", "DELETE": "a/delete"}
    assert event_topics({"topics": topics}) == ["a/create", "a/update", "a/delete"]
    assert event_topics({"topics": {**topics, "ALL": "a/+"}}) == ["a/+"]
