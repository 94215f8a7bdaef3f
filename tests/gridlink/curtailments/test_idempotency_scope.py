"""An external_id belongs to the principal that first used it."""

from __future__ import annotations

from datetime import timedelta

from tests.gridlink.conftest import T0, Api, iso


def test_another_principal_cannot_reuse_an_external_id(api: Api) -> None:
    body = {
        "external_id": "dr-2026-07-01",
        "start": iso(T0 + timedelta(hours=1)),
        "duration_s": 600,
        "limit_kw": 50,
    }
    first = api.request("POST", "/v1/curtailments", json=body)
    assert first.status_code == 201
    for changed in (body, {**body, "limit_kw": 40}):
        response = api.request("POST", "/v1/curtailments", role="manager", json=changed)
        assert response.status_code == 409, response.text
        assert "another principal" in response.json()["detail"]
    current = api.request("GET", f"/v1/curtailments/{first.json()['id']}").json()
    assert current["is_current"] and current["limit_kw"] == 50
    # The owner reposts idempotently and changes it as before.
    assert api.request("POST", "/v1/curtailments", json=body).status_code == 200
    changed = api.request("POST", "/v1/curtailments", json={**body, "limit_kw": 45})
    assert changed.status_code == 201 and changed.json()["version"] == 2
