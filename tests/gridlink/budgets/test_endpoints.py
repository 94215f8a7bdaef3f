"""GET /v1/timeline input rules."""

from __future__ import annotations

from datetime import timedelta

from tests.gridlink.conftest import T0, Api, iso


def test_timeline_defaults_to_the_planning_horizon(api: Api) -> None:
    timeline = api.request("GET", "/v1/timeline").json()
    assert timeline["start"].startswith("2026-07-01T00:00")
    assert timeline["end"].startswith("2026-07-02T00:00")
    assert [s["facility_limit_kw"] for s in timeline["segments"]] == [100.0]
    assert timeline["segments"][0]["gpu_budget_kw"] == 90.0


def test_timeline_window_rules_name_the_parameter(api: Api) -> None:
    cases = [
        ({"start": iso(T0), "end": iso(T0 - timedelta(hours=1))}, "end", "after start"),
        ({"start": iso(T0), "end": iso(T0 + timedelta(days=40))}, "end", "at most 31 days"),
        ({"start": "2026-07-01T00:00:00"}, "start", "timezone"),
    ]
    for params, field, fragment in cases:
        response = api.request("GET", "/v1/timeline", params=params)
        assert response.status_code == 422, params
        (error,) = response.json()["detail"]
        assert error["loc"] == ["query", field] and fragment in error["msg"], error


def test_budget_versions_keep_reason_inputs_and_allocations(api: Api) -> None:
    node = api.register_node("n1")
    body = {"start": iso(T0 + timedelta(hours=1)), "duration_s": 3600, "limit_kw": 14}
    event = api.request("POST", "/v1/curtailments", json=body).json()
    versions = api.request("GET", "/v1/budgets", role="auditor").json()
    assert [v["reason"] for v in versions] == [
        f"curtailment {event['id']} created",
        f"node {node['id']} (n1) registered",
    ]
    assert api.request("GET", "/v1/budgets", params={"before_id": versions[0]["id"]}).json() == [
        versions[1]
    ]
    latest = api.request("GET", f"/v1/budgets/{versions[0]['id']}", role="auditor").json()
    assert latest["inputs"]["events"] == [{"id": event["id"], "version": 1, "priority": 0}]
    assert [s["facility_limit_kw"] for s in latest["trajectory"]] == [100.0, 14.0, 100.0]
    assert [s["feasible"] for s in latest["trajectory"]] == [True, True, True]
    powers = [s["power_w"] for s in latest["allocations"][str(node["id"])]]
    assert powers == [6000.0, 4000.0, 6000.0]
    missing = api.request("GET", "/v1/budgets/999999")
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]
