"""OpenADR PRICE events through the price policy, and both token request styles."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.models.price import PricePoint
from gridlink.openadr.ven import OpenAdrVen
from tests.gridlink.conftest import T0, Api, iso
from tests.gridlink.openadr.conftest import PROGRAM, iso_z, ven_settings
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import VtnServer

PRICE_DESCRIPTOR = {
    "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
    "payloadType": "PRICE",
    "units": "KWH",
    "currency": "USD",
}


def test_a_price_event_makes_limits_through_the_price_policy(
    api: Api, vtn: FakeVtn, vtn_server: VtnServer, factory: sessionmaker[Session]
) -> None:
    settings = ven_settings(
        api,
        vtn_server.url,
        price_policy="thresholds",
        price_thresholds=[{"above": 0.3, "limit_kw": 65}],
    )
    ven = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    vtn.put_event(
        "tariff",
        {
            "programID": PROGRAM,
            "eventName": "day-ahead",
            "payloadDescriptors": [PRICE_DESCRIPTOR],
            "intervalPeriod": {"start": iso_z(T0), "duration": "PT1H"},
            "intervals": [
                {"id": n, "payloads": [{"type": "PRICE", "values": [p]}]}
                for n, p in enumerate([0.12, 0.48, 0.2])
            ],
        },
    )
    assert ven.poll()
    api.session.expire_all()
    points = api.session.scalars(select(PricePoint).order_by(PricePoint.start_at)).all()
    assert [(p.source, p.series_id, p.price, p.limit_kw) for p in points] == [
        ("openadr", "tariff", 0.12, None),
        ("openadr", "tariff", 0.48, 65.0),
        ("openadr", "tariff", 0.2, None),
    ]
    timeline = api.request("GET", "/v1/timeline", params={"start": iso(T0)}).json()
    limited = [s for s in timeline["segments"] if s["facility_limit_kw"] == 65.0]
    assert len(limited) == 1
    assert limited[0]["contributing_events"][0]["name"].startswith("price 0.48 USD/KWH")

    vtn.delete_event("tariff")
    ven.poll()
    timeline = api.request("GET", "/v1/timeline", params={"start": iso(T0)}).json()
    assert all(s["facility_limit_kw"] == 100.0 for s in timeline["segments"])
    ven.close()


@pytest.mark.parametrize("style", ["basic", "form"])
def test_both_token_request_styles(
    api: Api, vtn: FakeVtn, vtn_server: VtnServer, factory: sessionmaker[Session], style: str
) -> None:
    vtn.token_auth = style
    right = OpenAdrVen(
        factory, ven_settings(api, vtn_server.url, openadr_token_auth=style), api.publisher
    )
    assert right.poll()
    assert right.tokens.fetches == 1
    right.close()
    assert vtn.violations == []
    other = "form" if style == "basic" else "basic"
    wrong = OpenAdrVen(
        factory, ven_settings(api, vtn_server.url, openadr_token_auth=other), api.publisher
    )
    assert not wrong.poll()  # refused: the VEN backs off and says why in the log
    wrong.close()
