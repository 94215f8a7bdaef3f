"""Curtailments through the API: create, idempotent repost, versions, cancel, validation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.gridlink.conftest import T0, Api, iso

START = T0 + timedelta(hours=2)


def body(**overrides: Any) -> dict[str, Any]:
    return {"start": iso(START), "duration_s": 3600, "limit_kw": 60, **overrides}


def audit_actions(api: Api, entity_id: int | None = None) -> list[str]:
    params: dict[str, Any] = {"entity": "event"}
    if entity_id is not None:
        params["entity_id"] = str(entity_id)
    rows = api.request("GET", "/v1/audit", role="auditor", params=params).json()
    return [row["action"] for row in reversed(rows)]


def test_create_then_read_and_list(api: Api) -> None:
    created = api.request("POST", "/v1/curtailments", role="manager", json=body(name="peak"))
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["limit_kw"] == 60 and out["reduction_kw"] is None
    assert out["end"] == iso(START + timedelta(hours=1)).replace("+00:00", "Z")
    assert out["status"] == "scheduled" and out["version"] == 1 and out["is_current"]
    assert out["created_by"] == "manager:None"
    assert api.request("GET", f"/v1/curtailments/{out['id']}").json()["name"] == "peak"
    assert [c["id"] for c in api.request("GET", "/v1/curtailments").json()] == [out["id"]]
    api.clock.set(START + timedelta(minutes=5))
    assert api.request("GET", f"/v1/curtailments/{out['id']}").json()["status"] == "active"
    api.clock.set(START + timedelta(hours=2))
    assert api.request("GET", f"/v1/curtailments/{out['id']}").json()["status"] == "completed"


def test_same_event_twice_is_one_record_and_a_change_is_a_new_version(api: Api) -> None:
    first = api.request("POST", "/v1/curtailments", json=body(external_id="utility-42"))
    assert first.status_code == 201
    versions_before = len(api.publisher.published)
    again = api.request("POST", "/v1/curtailments", json=body(external_id="utility-42"))
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert len(api.publisher.published) == versions_before  # nothing recomputed or published

    changed = api.request(
        "POST", "/v1/curtailments", json=body(external_id="utility-42", limit_kw=40)
    )
    assert changed.status_code == 201
    new = changed.json()
    assert new["id"] != first.json()["id"] and new["version"] == 2 and new["is_current"]
    old = api.request("GET", f"/v1/curtailments/{first.json()['id']}").json()
    assert old["is_current"] is False and old["superseded_by_id"] == new["id"]

    listed = api.request("GET", "/v1/curtailments").json()
    assert [c["id"] for c in listed] == [new["id"]]
    history = api.request("GET", "/v1/curtailments", params={"include_superseded": True}).json()
    assert {c["id"] for c in history} == {new["id"], old["id"]}
    assert audit_actions(api) == ["event.create", "event.supersede"]
    # The timeline follows the current version only.
    timeline = api.request(
        "GET", "/v1/timeline", params={"start": iso(START), "end": iso(START + timedelta(hours=1))}
    ).json()
    assert [s["facility_limit_kw"] for s in timeline["segments"]] == [40.0]
    assert timeline["segments"][0]["contributing_event_ids"] == [new["id"]]


def test_patch_makes_a_new_version_and_cancel_keeps_the_record(api: Api) -> None:
    created = api.request("POST", "/v1/curtailments", json=body()).json()
    patched = api.request(
        "PATCH", f"/v1/curtailments/{created['id']}", json={"reduction_pct": 25, "priority": 5}
    )
    assert patched.status_code == 200, patched.text
    new = patched.json()
    assert new["version"] == 2 and new["reduction_pct"] == 25 and new["limit_kw"] is None
    assert new["priority"] == 5 and new["duration_s"] == 3600

    stale = api.request("PATCH", f"/v1/curtailments/{created['id']}", json={"priority": 1})
    assert stale.status_code == 409
    assert f"superseded by {new['id']}" in stale.json()["detail"]

    moved = api.request(
        "PATCH", f"/v1/curtailments/{new['id']}", json={"start": iso(START + timedelta(hours=1))}
    ).json()
    assert moved["duration_s"] == 3600 and moved["start"].startswith("2026-07-01T03:00")

    cancelled = api.request("DELETE", f"/v1/curtailments/{moved['id']}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancelled_at"]
    assert api.request("DELETE", f"/v1/curtailments/{moved['id']}").status_code == 200
    assert api.request("GET", f"/v1/curtailments/{moved['id']}").json()["status"] == "cancelled"
    assert api.request("PATCH", f"/v1/curtailments/{moved['id']}", json={}).status_code == 409
    timeline = api.request("GET", "/v1/timeline").json()
    assert all(s["facility_limit_kw"] == 100.0 for s in timeline["segments"])
    actions = audit_actions(api)
    assert actions == ["event.create", "event.supersede", "event.supersede", "curtailment.cancel"]


def test_recurring_curtailment_expands_into_intervals(api: Api) -> None:
    response = api.request(
        "POST",
        "/v1/curtailments",
        json=body(recurrence={"freq": "weekdays", "count": 5, "timezone": "UTC"}),
    )
    assert response.status_code == 201, response.text
    starts = [i["start"][:10] for i in response.json()["intervals"]]
    # 2026-07-01 is a Wednesday: Wed, Thu, Fri, then Mon, Tue.
    assert starts == ["2026-07-01", "2026-07-02", "2026-07-03", "2026-07-06", "2026-07-07"]


def test_unknown_curtailment_is_404_with_the_id(api: Api) -> None:
    response = api.request("GET", "/v1/curtailments/987654")
    assert response.status_code == 404
    assert "987654" in response.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        (body(start="2026-07-01T02:00:00"), "start", "timezone"),
        (body(duration_s=None, end=iso(START - timedelta(minutes=1))), "end", "after start"),
        (body(limit_kw=-5), "limit_kw", "greater than 0"),
        (body(limit_kw=1001), "limit_kw", "10 x facility_max_kw"),
        (body(limit_kw=None, reduction_pct=150), "reduction_pct", "less than or equal to 100"),
        (body(limit_kw=None, reduction_pct=0), "reduction_pct", "greater than 0"),
        (body(limit_kw=None, reduction_kw=5000), "reduction_kw", "10 x facility_max_kw"),
        (body(reduction_kw=5), None, "exactly one of limit_kw, reduction_kw or reduction_pct"),
        (body(duration_s=None), None, "exactly one of duration_s or end"),
        (body(recurrence={"freq": "daily"}), "recurrence", "exactly one of count or until"),
        (body(recurrence={"freq": "daily", "count": 400}), "recurrence", "more than 366"),
        (
            body(recurrence={"freq": "daily", "count": 2, "timezone": "Mars/Olympus"}),
            "recurrence.timezone",
            "unknown IANA time zone",
        ),
    ],
)
def test_bad_input_is_422_naming_the_field_and_rule(
    api: Api, payload: dict[str, Any], field: str | None, fragment: str
) -> None:
    response = api.request("POST", "/v1/curtailments", json=payload)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(fragment in e["msg"] for e in errors), errors
    if field is not None:
        assert any(".".join(map(str, e["loc"][1:])) == field for e in errors), errors
    assert api.request("GET", "/v1/curtailments").json() == []  # nothing half-written


def test_patch_is_validated_as_a_whole(api: Api) -> None:
    created = api.request("POST", "/v1/curtailments", json=body()).json()
    response = api.request(
        "PATCH", f"/v1/curtailments/{created['id']}", json={"end": iso(START - timedelta(hours=1))}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "end"]
    assert api.request("GET", f"/v1/curtailments/{created['id']}").json()["version"] == 1


def test_refresh_statuses_persists_transitions(api: Api) -> None:
    from gridlink.curtailments.service import refresh_statuses
    from gridlink.models.event import Event

    created = api.request("POST", "/v1/curtailments", json=body()).json()
    assert refresh_statuses(api.session, now=START + timedelta(minutes=1)) == 1
    event = api.session.get(Event, created["id"])
    assert event is not None and event.status.value == "active"
    assert refresh_statuses(api.session, now=START + timedelta(minutes=2)) == 0
    assert refresh_statuses(api.session, now=START + timedelta(hours=1)) == 1
    assert event.status.value == "completed"
