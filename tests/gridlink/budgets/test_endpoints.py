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
