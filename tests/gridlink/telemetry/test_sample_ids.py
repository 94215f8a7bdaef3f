"""Per-sample ids: a replayed batch stores nothing twice (ON CONFLICT DO NOTHING on both
backends), and samples keep the agent's mode and per-GPU caps."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from gridlink.models.telemetry import TelemetrySample
from tests.gridlink.conftest import Api, iso


def _batch(api: Api, ids: range) -> list[dict[str, object]]:
    start = api.clock.now - timedelta(seconds=100)
    return [
        {
            "ts": iso(start + timedelta(seconds=i)),
            "power_w": 300.0 + i,
            "throughput_tok_s": 900.0,
            "sample_id": f"run1-{i}",
            "mode": "tracking",
            "gpu_power_caps_w": [310.0, 320.0],
        }
        for i in ids
    ]


def test_a_replayed_batch_is_stored_once(api: Api) -> None:
    node = api.register_node("a")
    path = f"/v1/nodes/{node['id']}/telemetry"
    for ids in (range(0, 10), range(5, 15), range(0, 15)):  # overlapping replays
        answer = api.request(
            "POST", path, role="node", node_id=node["id"], json={"samples": _batch(api, ids)}
        )
        assert answer.status_code == 201, answer.text
    rows = list(
        api.session.scalars(
            select(TelemetrySample)
            .where(TelemetrySample.node_id == node["id"])
            .order_by(TelemetrySample.ts)
        )
    )
    assert [r.sample_id for r in rows] == [f"run1-{i}" for i in range(15)]
    assert rows[3].mode == "tracking" and rows[3].gpu_power_caps_w == [310.0, 320.0]
    assert rows[3].power_w == 303.0  # the first copy is kept


def test_a_bad_sample_id_is_refused_naming_the_field(api: Api) -> None:
    node = api.register_node("a")
    sample = _batch(api, range(1))[0] | {"sample_id": "no spaces allowed"}
    answer = api.request(
        "POST",
        f"/v1/nodes/{node['id']}/telemetry",
        role="node",
        node_id=node["id"],
        json={"samples": [sample]},
    )
    assert answer.status_code == 422
    assert "sample_id" in answer.text
