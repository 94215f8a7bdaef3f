"""GET /metrics on a live gateway: counters move with requests, gauges follow the facility."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gridlink.db import migrate
from gridlink.settings import GridlinkSettings
from tests.gridlink.live import live_gateway
from tests.gridlink.web.conftest import make_tokens


def value(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$" if labels else rf"^{name} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name}{labels} not in /metrics"
    return float(match.group(1))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def test_metrics_follow_requests_and_the_facility(
    backend: str, make_database: Callable[[str], str]
) -> None:
    url = make_database(backend)
    migrate.upgrade(url)
    tokens = make_tokens(url)
    settings = GridlinkSettings(database_url=url, facility_max_kw=50.0, facility_overhead_kw=5.0)
    with live_gateway(settings) as (base, _app):
        admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens['admin']}"})
        node = {
            "name": "n1",
            "gpu_type": "H100",
            "gpu_count": 2,
            "gpu_min_cap_w": 200,
            "gpu_max_cap_w": 700,
        }
        node_id = admin.post("/v1/nodes", json=node).json()["id"]
        now = datetime.now(UTC)
        sample = {"ts": now.isoformat(), "power_w": 1200.0, "throughput_tok_s": 100.0}
        admin.post(f"/v1/nodes/{node_id}/telemetry", json={"samples": [sample]}).raise_for_status()
        curtail = {
            "start": (now - timedelta(seconds=5)).isoformat(),
            "duration_s": 600,
            "limit_kw": 20,
        }
        admin.post("/v1/curtailments", json=curtail).raise_for_status()
        admin.get("/v1/curtailments/999999")
        text = httpx.get(base + "/metrics").text
        admin.close()

    assert (
        value(
            text, "gridlink_http_requests_total", '{method="POST",route="/v1/nodes",status="201"}'
        )
        == 1
    )
    assert (
        value(
            text,
            "gridlink_http_requests_total",
            '{method="GET",route="/v1/curtailments/{curtailment_id}",status="404"}',
        )
        == 1
    )
    assert (
        value(
            text,
            "gridlink_http_request_duration_seconds_count",
            '{method="POST",route="/v1/curtailments"}',
        )
        == 1
    )
    assert value(text, "gridlink_facility_limit_kw") == 20.0
    assert value(text, "gridlink_gpu_budget_kw") == 15.0
    assert value(text, "gridlink_fleet_power_kw") == pytest.approx(6.2)
    assert value(text, "gridlink_nodes", '{status="online"}') == 1
    assert value(text, "gridlink_telemetry_ingest_samples_per_second") == pytest.approx(1 / 60)
    assert value(text, "gridlink_scheduler_leader") == 1
    assert value(text, "gridlink_budget_versions_published_total") >= 1
    assert value(text, "gridlink_stream_subscribers", '{stream="allocation"}') == 0
    assert value(text, "gridlink_metrics_database_up") == 1
    assert "gridlink_scheduler_boundary_lag_seconds" in text
