"""Telemetry batches, facility power, batch limits and oversized bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from gridlink.models.telemetry import TelemetrySample
from tests.gridlink.conftest import Api, iso


def samples(api: Api, count: int, power_w: float = 3000.0, step_s: float = 1.0) -> list[Any]:
    start = api.clock.now - timedelta(seconds=count * step_s)
    return [
        {
            "ts": iso(start + timedelta(seconds=i * step_s)),
            "power_w": power_w,
            "throughput_tok_s": 900.0,
            "power_cap_w": 500.0,
            "batch_limit": 128,
            "requests_waiting": 0,
            "qos_violation": False,
        }
        for i in range(count)
    ]


def stored(api: Api, node_id: int) -> int:
    stmt = (
        select(func.count()).select_from(TelemetrySample).where(TelemetrySample.node_id == node_id)
    )
    return int(api.session.scalar(stmt) or 0)


def test_batch_is_stored_and_feeds_facility_power(api: Api) -> None:
    a = api.register_node("a")
    b = api.register_node("b")
    for node, power in ((a, 3000.0), (b, 2000.0)):
        response = api.request(
            "POST",
            f"/v1/nodes/{node['id']}/telemetry",
            role="node",
            node_id=node["id"],
            json={"samples": samples(api, 1000, power)},
        )
        assert response.status_code == 201, response.text
        assert response.json()["accepted"] == 1000
    assert stored(api, a["id"]) == 1000
    power = api.request("GET", "/v1/facility/power", role="manager").json()
    assert power["nodes_reporting"] == 2
    assert power["gpu_power_kw"] == 5.0
    assert power["facility_power_kw"] == 15.0  # plus 10 kW overhead
    api.clock.advance(minutes=5)  # every sample is older than node_stale_after_s
    assert api.request("GET", "/v1/facility/power").json()["nodes_reporting"] == 0


def test_too_many_samples_or_future_samples_are_refused_whole(api: Api) -> None:
    node = api.register_node("a")
    url = f"/v1/nodes/{node['id']}/telemetry"
    response = api.request("POST", url, json={"samples": samples(api, 1001)})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "samples"]
    assert "at most 1000" in response.json()["detail"][0]["msg"]

    batch = samples(api, 10)
    batch[7]["ts"] = iso(api.clock.now + timedelta(hours=1))
    response = api.request("POST", url, json={"samples": batch})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "samples", "7", "ts"]

    batch = samples(api, 10)
    batch[3]["ts"] = "2026-07-01T00:00:00"  # naive
    response = api.request("POST", url, json={"samples": batch})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "samples", 3, "ts"]
    assert stored(api, node["id"]) == 0


def test_oversized_bodies_get_413_by_header_and_while_streaming(api: Api) -> None:
    node = api.register_node("a")
    url = f"/v1/nodes/{node['id']}/telemetry"
    big = json.dumps({"samples": samples(api, 1000) * 2}).encode()
    assert len(big) > api.settings.max_body_bytes
    headers = {**api.token("admin"), "Content-Type": "application/json"}

    response = api.client.post(url, content=big, headers=headers)
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 16_384):
            yield big[start : start + 16_384]

    response = api.client.post(url, content=chunks(), headers=headers)
    assert response.status_code == 413
    assert stored(api, node["id"]) == 0


def test_node_can_only_write_its_own_telemetry(api: Api) -> None:
    a = api.register_node("a")
    b = api.register_node("b")
    response = api.request(
        "POST",
        f"/v1/nodes/{b['id']}/telemetry",
        role="node",
        node_id=a["id"],
        json={"samples": samples(api, 3)},
    )
    assert response.status_code == 403
    assert "bound to node" in response.json()["detail"]
    assert stored(api, b["id"]) == 0
