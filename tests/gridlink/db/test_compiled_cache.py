"""SQLAlchemy's compiled-statement cache (an LRU of 500 entries per engine) stays the same size
however many rows a request carries: a statement whose cache key changed with the size of its
input (a literal IN-list, a multi-row VALUES built per batch) would add an entry per size and
keep the gateway's memory growing for as long as new sizes appear."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from gridlink.streams import repository as streams_repository
from tests.gridlink.conftest import Api, iso


def _cache_size(session: Session) -> int:
    cache = session.get_bind().engine._compiled_cache
    assert cache is not None, "the engine caches compiled statements"
    return len(cache)


def _telemetry(api: Api, node_id: int, count: int) -> None:
    start = api.clock.now - timedelta(seconds=count)
    body = {
        "samples": [
            {
                "ts": iso(start + timedelta(seconds=i)),
                "power_w": 3000.0 + i,
                "throughput_tok_s": 900.0,
                "power_cap_w": 500.0,
                "qos_violation": False,
            }
            for i in range(count)
        ]
    }
    response = api.request(
        "POST", f"/v1/nodes/{node_id}/telemetry", role="node", node_id=node_id, json=body
    )
    assert response.status_code == 201, response.text


def _curtail(api: Api, minutes_ahead: int, limit_kw: float) -> dict[str, Any]:
    body = {
        "name": f"c{minutes_ahead}",
        "start": iso(api.clock.now + timedelta(minutes=minutes_ahead)),
        "duration_s": 600,
        "limit_kw": limit_kw,
    }
    response = api.request("POST", "/v1/curtailments", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _round(api: Api, nodes: list[int], size: int) -> None:
    """One of each request the version soak sends, with inputs of ``size``."""
    for node_id in nodes:
        _telemetry(api, node_id, size)
    created = _curtail(api, 10 + size, 50.0 + size % 7)
    response = api.request(
        "PATCH", f"/v1/curtailments/{created['id']}", json={"limit_kw": 40.0 + size % 5}
    )
    assert response.status_code == 200, response.text
    for node_id in nodes:
        assert api.request("GET", f"/v1/nodes/{node_id}/allocation").status_code == 200
    revised = response.json()["id"]  # a PATCH stores a revision under a new id
    assert api.request("DELETE", f"/v1/curtailments/{revised}").status_code == 200
    streams_repository.live_token_ids(api.session, set(range(1, size + 1)))
    api.clock.advance(seconds=size + 1)


def test_requests_of_every_size_share_their_compiled_statements(api: Api) -> None:
    nodes = [api.register_node(f"n{i}")["id"] for i in range(3)]
    _round(api, nodes, 1)
    _round(api, nodes, 2)  # a second pass: first-time paths (an update, not an insert) are known
    before = _cache_size(api.session)
    for size in (3, 5, 8, 13, 21, 34, 55, 89, 144):
        _round(api, nodes, size)
    assert _cache_size(api.session) == before
