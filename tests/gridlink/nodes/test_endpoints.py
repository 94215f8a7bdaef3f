"""Node registration (idempotent by name), heartbeat, status from last contact."""

from __future__ import annotations

from tests.gridlink.conftest import Api, iso


def test_register_is_idempotent_by_name(api: Api) -> None:
    first = api.register_node("rack1-n1", curve=[[2000, 100], [4000, 180], [6000, 220]])
    assert first["min_power_w"] == 8 * 200 + 400
    assert first["max_power_w"] == 8 * 700 + 400
    assert first["status"] == "online" and first["curve"] == [[2000, 100], [4000, 180], [6000, 220]]
    again = api.request(
        "POST",
        "/v1/nodes",
        json={
            "name": "rack1-n1",
            "gpu_type": "H100-SXM",
            "gpu_count": 8,
            "gpu_min_cap_w": 200.0,
            "gpu_max_cap_w": 700.0,
            "idle_power_w": 400.0,
            "curve": [[2000, 100], [4000, 180], [6000, 220]],
        },
    )
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert len(api.request("GET", "/v1/nodes").json()) == 1
    actions = [
        row["action"] for row in api.request("GET", "/v1/audit", params={"entity": "node"}).json()
    ]
    assert actions == ["node.heartbeat", "node.register"]


def test_spec_change_updates_and_recomputes(api: Api) -> None:
    node = api.register_node("n1")
    before = len(api.publisher.published)
    changed = api.register_node("n1", gpu_count=4)
    assert changed["max_power_w"] == 4 * 700 + 400
    assert len(api.publisher.published) == before + 1
    audit = api.request("GET", "/v1/audit", params={"entity": "node", "action": "node.update"})
    (row,) = audit.json()
    assert row["before"]["gpu_count"] == 8 and row["after"]["gpu_count"] == 4
    assert row["entity_id"] == str(node["id"])


def test_status_follows_last_contact(api: Api) -> None:
    node = api.register_node("n1")
    url = f"/v1/nodes/{node['id']}"
    api.clock.advance(seconds=30)
    assert api.request("GET", url).json()["status"] == "online"
    api.clock.advance(seconds=60)
    assert api.request("GET", url).json()["status"] == "stale"
    api.clock.advance(days=2)
    assert api.request("GET", url).json()["status"] == "offline"
    sample = {"ts": iso(api.clock.now), "power_w": 2500.0, "throughput_tok_s": 800.0}
    posted = api.request(
        "POST", f"{url}/telemetry", role="node", node_id=node["id"], json={"samples": [sample]}
    )
    assert posted.status_code == 201
    detail = api.request("GET", url, role="node", node_id=node["id"]).json()
    assert detail["status"] == "online" and detail["latest_power_w"] == 2500.0
    assert detail["current_allocation_w"] == 6000.0 and detail["budget_version_id"] is not None
    (listed,) = api.request("GET", "/v1/nodes").json()
    assert listed == detail  # the batched listing says the same as the single read


def test_node_token_cannot_register_another_name(api: Api) -> None:
    node = api.register_node("n1")
    response = api.request(
        "POST",
        "/v1/nodes",
        role="node",
        node_id=node["id"],
        json={
            "name": "impostor",
            "gpu_type": "H100-SXM",
            "gpu_count": 1,
            "gpu_min_cap_w": 200,
            "gpu_max_cap_w": 700,
        },
    )
    assert response.status_code == 403
    assert api.request("GET", "/v1/nodes").json()[0]["name"] == "n1"


def test_unknown_node_is_404_naming_the_id(api: Api) -> None:
    for url in ("/v1/nodes/4242", "/v1/nodes/4242/allocation"):
        response = api.request("GET", url)
        assert response.status_code == 404
        assert "4242" in response.json()["detail"]
    response = api.request(
        "POST",
        "/v1/nodes/4242/telemetry",
        json={"samples": [{"ts": iso(api.clock.now), "power_w": 1, "throughput_tok_s": 1}]},
    )
    assert response.status_code == 404


def test_bad_registration_names_the_field(api: Api) -> None:
    base = {
        "name": "n1",
        "gpu_type": "H100-SXM",
        "gpu_count": 8,
        "gpu_min_cap_w": 200.0,
        "gpu_max_cap_w": 700.0,
    }
    cases = [
        ({**base, "gpu_max_cap_w": 100.0}, "gpu_max_cap_w", ">= gpu_min_cap_w"),
        ({**base, "gpu_count": 0}, "gpu_count", "greater than or equal to 1"),
        ({**base, "curve": [[300, 10], [200, 20]]}, "curve", "increase strictly"),
        ({**base, "curve": [[200, 20], [300, 10]]}, "curve", "must not decrease"),
        ({**base, "name": "bad name!"}, "name", "pattern"),
    ]
    for payload, field, fragment in cases:
        response = api.request("POST", "/v1/nodes", json=payload)
        assert response.status_code == 422, payload
        errors = response.json()["detail"]
        assert any(e["loc"][1] == field and fragment in e["msg"] for e in errors), errors
    assert api.request("GET", "/v1/nodes").json() == []
