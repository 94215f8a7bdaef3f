"""The webhook: echo challenge, bearer-token notifications ingested like a poll, and a live
subscription with the fake VTN calling a real gateway over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker
from gridlink.models.event import Event, EventSource, EventStatus
from gridlink.openadr.ven import OpenAdrVen
from gridlink.settings import GridlinkSettings
from tests.gridlink.conftest import T0, Api
from tests.gridlink.live import live_gateway
from tests.gridlink.openadr.conftest import PROGRAM, event_body, ven_settings
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import VtnServer

TOKEN = "hook-token-123"
LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [70]}]


@pytest.fixture
def hooked(api: Api) -> Api:
    api.app.state.settings = GridlinkSettings(
        **{**api.settings.model_dump(), "openadr_webhook_token": TOKEN}
    )
    return api


def _notification(operation: str, event_id: str, value: float = 70) -> dict[str, Any]:
    payloads = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [value]}]
    event = {
        "id": event_id,
        "createdDateTime": "2026-07-01T00:00:00Z",
        "modificationDateTime": "2026-07-01T00:00:00Z",
        "objectType": "EVENT",
        **event_body(T0 + timedelta(hours=1), payloads),
    }
    return {"objectType": "EVENT", "operation": operation, "object": event}


def _post(api: Api, body: Any, token: str | None = TOKEN) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return api.client.post("/v1/openadr/notifications", json=body, headers=headers)


def _current(session: Session, external_id: str) -> Event:
    session.expire_all()
    stmt = select(Event).where(
        Event.source == EventSource.OPENADR, Event.external_id == external_id, Event.is_current
    )
    return session.scalars(stmt).one()


def test_echo_challenge_on_both_paths(hooked: Api) -> None:
    for path in ("/v1/openadr/notifications", "/v1/openadr/notifications/echo"):
        response = hooked.client.get(path, params={"echo": "x1y2"})
        assert response.status_code == 200
        assert response.text == "x1y2"


def test_without_a_webhook_token_the_webhook_is_off(api: Api) -> None:
    assert api.client.get("/v1/openadr/notifications", params={"echo": "a"}).status_code == 404
    assert _post(api, _notification("CREATE", "ev-1")).status_code == 404


def test_notifications_need_the_subscription_token(hooked: Api) -> None:
    assert _post(hooked, _notification("CREATE", "ev-1"), token=None).status_code == 401
    assert _post(hooked, _notification("CREATE", "ev-1"), token="wrong").status_code == 401
    assert hooked.publisher.published == []


def test_create_update_delete_through_notifications(hooked: Api) -> None:
    response = _post(hooked, _notification("CREATE", "ev-1"))
    assert response.status_code == 200, response.text
    assert response.json()["changed"] is True
    assert _current(hooked.session, "ev-1").intervals[0].value == 70.0
    assert len(hooked.publisher.published) == 1

    again = _post(hooked, _notification("CREATE", "ev-1"))
    assert again.json()["changed"] is False  # the same event twice is one record
    assert len(hooked.publisher.published) == 1

    _post(hooked, _notification("UPDATE", "ev-1", value=55))
    current = _current(hooked.session, "ev-1")
    assert (current.version, current.intervals[0].value) == (2, 55.0)

    _post(hooked, _notification("DELETE", "ev-1"))
    assert _current(hooked.session, "ev-1").status is EventStatus.CANCELLED


def test_a_body_that_is_not_a_notification_is_422(hooked: Api) -> None:
    response = _post(hooked, {"objectType": "EVENT", "operation": "POKE", "object": {}})
    assert response.status_code == 422
    assert "notification" in response.text


def test_live_subscription_and_notification(
    make_database: Callable[[str], str], vtn: FakeVtn, vtn_server: VtnServer, api: Api
) -> None:
    url = make_database("sqlite")
    migrate.upgrade(url)
    gateway_settings = GridlinkSettings(
        database_url=url,
        facility_max_kw=100.0,
        scheduler_enabled=False,
        openadr_webhook_token=TOKEN,
    )
    engine = build_engine(url)
    factory = build_sessionmaker(engine)
    with live_gateway(gateway_settings) as (gateway_url, _app):
        settings = ven_settings(
            api,
            vtn_server.url,
            database_url=url,
            openadr_webhook_base_url=gateway_url,
            openadr_webhook_token=TOKEN,
        )
        ven = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
        try:
            assert ven.poll()  # registers, and subscribes: the VTN checks the echo first
        finally:
            ven.close()
        (subscription,) = vtn.subscriptions.values()
        operation = subscription["objectOperations"][0]
        assert operation["operations"] == ["CREATE", "UPDATE", "DELETE"]
        assert operation["callbackUrl"] == f"{gateway_url}/v1/openadr/notifications"

        vtn.put_event("ev-live", event_body(T0 + timedelta(hours=1), LIMIT))
        assert vtn.notifications_sent[-1]["status"] == 200
        with factory() as session:
            stored = _current(session, "ev-live")
            assert stored.intervals[0].value == 70.0
        vtn.delete_event("ev-live")
        with factory() as session:
            assert _current(session, "ev-live").status is EventStatus.CANCELLED
    engine.dispose()
    assert vtn.violations == []
    assert PROGRAM in vtn.programs


def test_notifications_about_programs_not_followed_are_ignored(hooked: Api) -> None:
    hooked.app.state.settings = GridlinkSettings(
        **{**hooked.app.state.settings.model_dump(), "openadr_program_ids": ["other-program"]}
    )
    response = _post(hooked, _notification("CREATE", "ev-1"))
    assert response.status_code == 200
    assert response.json()["changed"] is False
    listed = hooked.request("GET", "/v1/openadr/events").json()
    assert [(e["state"], e["reason"]) for e in listed] == [("ignored", "program not followed")]
