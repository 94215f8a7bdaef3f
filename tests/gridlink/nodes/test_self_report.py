"""What a node token may say about its own node: inventory and curve, never its tier, and
nothing beyond one server."""

from __future__ import annotations

from typing import Any

from tests.gridlink.conftest import Api


def _body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "n1",
        "gpu_type": "H100-SXM",
        "gpu_count": 8,
        "gpu_min_cap_w": 200.0,
        "gpu_max_cap_w": 700.0,
        "idle_power_w": 400.0,
        **overrides,
    }


def test_a_node_token_cannot_choose_its_tier(api: Api) -> None:
    node = api.register_node("n1", flexibility_tier=2)
    nid = node["id"]
    response = api.request(
        "POST", "/v1/nodes", role="node", node_id=nid, json=_body(flexibility_tier=0)
    )
    assert response.status_code == 403
    assert "flexibility_tier" in response.json()["detail"]
    # Leaving it out (or repeating the stored tier) keeps the tier an admin set.
    response = api.request("POST", "/v1/nodes", role="node", node_id=nid, json=_body(gpu_count=4))
    assert response.status_code == 200, response.text
    assert response.json()["flexibility_tier"] == 2
    assert response.json()["gpu_count"] == 4
    same = _body(flexibility_tier=2)
    assert api.request("POST", "/v1/nodes", role="node", node_id=nid, json=same).status_code == 200
    # An admin may change it.
    response = api.request("POST", "/v1/nodes", json=_body(flexibility_tier=0))
    assert response.status_code == 200 and response.json()["flexibility_tier"] == 0


def test_a_node_token_cannot_inflate_its_power_range(api: Api) -> None:
    nid = api.register_node("n1")["id"]
    for field, value in (("gpu_count", 1024), ("gpu_max_cap_w", 5000.0), ("idle_power_w", 1e5)):
        response = api.request(
            "POST", "/v1/nodes", role="node", node_id=nid, json=_body(**{field: value})
        )
        assert response.status_code == 403, (field, response.text)
        assert field in response.json()["detail"]
    node = api.request("GET", f"/v1/nodes/{nid}").json()
    assert node["max_power_w"] == 8 * 700.0 + 400.0  # unchanged
    # An admin registers large nodes.
    big = _body(name="big", gpu_count=1024, gpu_max_cap_w=5000.0)
    assert api.request("POST", "/v1/nodes", json=big).status_code == 201
