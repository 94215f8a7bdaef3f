"""Telemetry history reads raw minutes while they are kept, then the rollups that replace them."""

from __future__ import annotations

from datetime import timedelta

from tests.gridlink.conftest import Api, iso


def test_history_reads_raw_then_rollups(api: Api) -> None:
    from gridlink.telemetry.service import downsample_and_prune

    node = api.register_node("n1")
    now = api.clock.now
    old, recent = now - timedelta(days=3), now - timedelta(minutes=2)
    samples = [
        {"ts": iso(t + timedelta(seconds=s)), "power_w": p, "throughput_tok_s": p / 10}
        for t, powers in ((old, (1000.0, 3000.0)), (recent, (4000.0, 5000.0)))
        for s, p in zip((5, 35), powers, strict=True)
    ]
    url = f"/v1/nodes/{node['id']}/telemetry"
    assert api.request("POST", url, json={"samples": samples}).status_code == 201
    settings = api.settings.model_copy(update={"telemetry_raw_retention_days": 1.0})
    report = downsample_and_prune(api.session, now=now, settings=settings)
    assert report.rollups_written == 1
    api.session.commit()

    history = api.request(
        "GET",
        f"{url}/history",
        params={"since": iso(old - timedelta(hours=1)), "until": iso(now)},
    )
    assert history.status_code == 200, history.text
    rows = history.json()
    assert [(r["source"], r["samples"], r["power_w_avg"]) for r in rows] == [
        ("rollup", 2, 2000.0),
        ("raw", 2, 4500.0),
    ]
    assert rows[0]["minute"].startswith(old.replace(second=0).isoformat()[:16])
    too_long = {"since": iso(now - timedelta(days=8)), "until": iso(now)}
    assert api.request("GET", f"{url}/history", params=too_long).status_code == 422
    own = api.request("GET", f"{url}/history", role="node", node_id=node["id"])
    assert own.status_code == 200
