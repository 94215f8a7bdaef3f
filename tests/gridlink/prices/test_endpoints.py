"""/v1/prices: a posted series becomes limits through the policy, and the timeline says which
price made which limit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from gridlink.settings import GridlinkSettings
from tests.gridlink.conftest import T0, Api, iso

H = timedelta(hours=1)
THRESHOLDS = [{"above": 0.3, "limit_kw": 70}, {"above": 0.8, "limit_kw": 50}]


def _policy(api: Api, **values: Any) -> Api:
    api.app.state.settings = GridlinkSettings(**{**api.settings.model_dump(), **values})
    return api


@pytest.fixture
def priced(api: Api) -> Api:
    return _policy(api, price_policy="thresholds", price_thresholds=THRESHOLDS)


def _series(prices: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "series_id": "da-2026-07-01",
        "currency": "USD",
        "unit": "KWH",
        "intervals": [
            {"start": iso(T0 + n * H), "duration_s": 3600, "price": p} for n, p in enumerate(prices)
        ],
        **extra,
    }


def _segments(api: Api) -> list[dict[str, Any]]:
    response = api.request("GET", "/v1/timeline", params={"start": iso(T0), "end": iso(T0 + 4 * H)})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["segments"]
    return result


def _limit_at(api: Api, at: datetime) -> dict[str, Any]:
    return next(
        s
        for s in _segments(api)
        if datetime.fromisoformat(s["start"]) <= at < datetime.fromisoformat(s["end"])
    )


def test_a_series_makes_limits_and_the_timeline_names_the_price(priced: Api) -> None:
    response = priced.request("POST", "/v1/prices", json=_series([0.1, 0.4, 0.9]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] is True
    assert [p["limit_kw"] for p in body["points"]] == [None, 70.0, 50.0]
    assert "threshold" in body["points"][1]["rule"]

    assert _limit_at(priced, T0)["facility_limit_kw"] == 100.0
    hour2 = _limit_at(priced, T0 + H)
    assert hour2["facility_limit_kw"] == 70.0
    (cause,) = hour2["contributing_events"]
    assert cause["source"] == "price"
    assert cause["name"].startswith("price 0.4 USD/KWH") and "> 0.3" in cause["name"]
    assert _limit_at(priced, T0 + 2 * H)["facility_limit_kw"] == 50.0
    assert len(priced.publisher.published) == 1

    listed = priced.request("GET", "/v1/prices", params={"start": iso(T0)}).json()
    assert [(p["price"], p["limit_kw"]) for p in listed] == [(0.1, None), (0.4, 70.0), (0.9, 50.0)]
    assert listed[1]["event_id"] == cause["id"]


def test_reposting_is_idempotent_and_a_changed_series_replaces_the_old(priced: Api) -> None:
    priced.request("POST", "/v1/prices", json=_series([0.1, 0.4, 0.9]))
    again = priced.request("POST", "/v1/prices", json=_series([0.1, 0.4, 0.9])).json()
    assert again["changed"] is False
    changed = priced.request("POST", "/v1/prices", json=_series([0.1, 0.1])).json()
    assert changed["changed"] is True
    assert [p["limit_kw"] for p in changed["points"]] == [None, None]
    assert all(s["facility_limit_kw"] == 100.0 for s in _segments(priced))


def test_prices_in_mwh_are_compared_per_kwh(priced: Api) -> None:
    body = priced.request("POST", "/v1/prices", json=_series([400.0], unit="MWH")).json()
    assert body["points"][0]["price_per_kwh"] == pytest.approx(0.4)
    assert body["points"][0]["limit_kw"] == 70.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "EUR"}, "currency"),
        ({"unit": "THERMS"}, "unit"),
        ({"series_id": "a b"}, "series_id"),
    ],
)
def test_bad_series_are_422_naming_the_field(
    priced: Api, change: dict[str, Any], field: str
) -> None:
    response = priced.request("POST", "/v1/prices", json=_series([0.5], **change))
    assert response.status_code == 422
    assert field in response.text


def test_the_economic_policy_uses_the_fleet_curves(api: Api) -> None:
    curve = [[2000.0, 0.0], [3000.0, 4000.0], [4000.0, 6500.0], [6000.0, 8000.0]]
    for name in ("n1", "n2"):
        api.register_node(name, curve=curve)
    _policy(api, price_policy="economic", price_token_value_per_mtok=1.0)
    body = api.request("POST", "/v1/prices", json=_series([0.05, 3.0, 20.0])).json()
    # overhead 10 kW + 2 nodes at 6, 4 and 2 kW: the marginal tokens stop paying as the price
    # rises (slopes 4, 2.5 and 0.75 tok/J against 0.014, 0.83 and 5.6 tok/J needed)
    limits = [p["limit_kw"] for p in body["points"]]
    assert limits == [22.0, 18.0, 14.0]
    assert all("economic" in p["rule"] for p in body["points"])
