"""Every write leaves an audit row with the actor, the entity and before/after."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gridlink.budgets import hooks
from gridlink.errors import AllocationError
from tests.gridlink.conftest import T0, Api, iso


def audit(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.request("GET", "/v1/audit", role="auditor", params=params)
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_every_write_is_audited_with_its_actor(api: Api) -> None:
    for role in ("admin", "manager", "auditor"):
        api.token(role)
    start = len(audit(api, limit=1000))
    node = api.register_node("n1")  # admin: register + budget version
    api.request(
        "POST",
        f"/v1/nodes/{node['id']}/telemetry",
        role="node",
        node_id=node["id"],
        json={"samples": [{"ts": iso(T0), "power_w": 100.0, "throughput_tok_s": 5.0}]},
    )
    body = {"start": iso(T0 + timedelta(hours=1)), "duration_s": 600, "limit_kw": 30}
    created = api.request("POST", "/v1/curtailments", role="manager", json=body).json()
    patched = api.request(
        "PATCH", f"/v1/curtailments/{created['id']}", role="manager", json={"limit_kw": 20}
    ).json()
    api.request("DELETE", f"/v1/curtailments/{patched['id']}", role="manager")

    rows = list(reversed(audit(api, limit=1000)))[start:]
    summary = [(r["action"], r["actor_role"], r["entity"]) for r in rows]
    assert summary == [
        ("node.register", "admin", "node"),
        ("budget.version", "admin", "budget_version"),
        ("token.create", "system", "api_token"),  # the node token (gridlink token create)
        ("telemetry.ingest", "node", "node"),
        ("event.create", "manager", "event"),
        ("budget.version", "manager", "budget_version"),
        ("event.supersede", "manager", "event"),
        ("budget.version", "manager", "budget_version"),
        ("curtailment.cancel", "manager", "event"),
        ("budget.version", "manager", "budget_version"),
    ]
    by_action = {r["action"]: r for r in rows}
    assert by_action["telemetry.ingest"]["after"]["samples"] == 1
    assert by_action["telemetry.ingest"]["actor_token_id"] is not None
    supersede = by_action["event.supersede"]
    assert supersede["before"]["intervals"][0]["value"] == 30
    assert supersede["after"]["intervals"][0]["value"] == 20
    cancel = by_action["curtailment.cancel"]
    assert (cancel["before"]["status"], cancel["after"]["status"]) == ("scheduled", "cancelled")
    assert all(r["at"].startswith("2026-07-01T00:00") for r in rows)
    # Filters and paging.
    assert [r["action"] for r in audit(api, entity="event", entity_id=str(created["id"]))] == [
        "event.create"
    ]
    newest = audit(api, limit=2)
    older = audit(api, limit=2, before_id=newest[-1]["id"])
    assert older[0]["id"] < newest[-1]["id"]


def test_a_failing_request_writes_nothing_and_publishes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.register_node("n1")
    published = len(api.publisher.published)
    before = len(audit(api, limit=1000))

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise AllocationError("curve of node 1 is broken")

    monkeypatch.setattr(hooks, "recompute_budget", broken)
    body = {"start": iso(T0 + timedelta(hours=1)), "duration_s": 600, "limit_kw": 30}
    response = api.request("POST", "/v1/curtailments", json=body)
    assert response.status_code == 422
    assert api.request("GET", "/v1/curtailments").json() == []
    assert len(audit(api, limit=1000)) == before
    assert len(api.publisher.published) == published


def test_versions_are_published_after_commit(api: Api) -> None:
    api.register_node("n1")
    body = {"start": iso(T0 + timedelta(hours=1)), "duration_s": 600, "limit_kw": 30}
    api.request("POST", "/v1/curtailments", json=body)
    latest = api.publisher.published[-1]
    rows = audit(api, entity="budget_version", entity_id=str(latest))
    assert rows and rows[0]["after"]["reason"].startswith("curtailment")


def test_a_failing_publisher_does_not_fail_the_committed_request(api: Api) -> None:
    class Broken:
        def publish(self, version_id: int) -> None:
            raise RuntimeError("stream down")

    api.app.state.publisher = Broken()
    body = {"start": iso(T0 + timedelta(hours=1)), "duration_s": 600, "limit_kw": 30}
    response = api.request("POST", "/v1/curtailments", json=body)
    assert response.status_code == 201
    assert len(api.request("GET", "/v1/curtailments").json()) == 1
