"""Every endpoint with every principal, checked against the table in docs/gateway-api.md."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.gridlink.conftest import T0, Api, iso

DOC = Path(__file__).resolve().parents[3] / "docs" / "gateway-api.md"
PRINCIPALS = ("admin", "manager", "node (own)", "node (other)", "auditor", "none")
ROW = re.compile(r"^\| `(GET|POST|PATCH|DELETE) (/\S+)` \|(.+)\|\s*$")


def documented_matrix() -> dict[tuple[str, str], dict[str, str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Role matrix")
    header = next(line for line in lines[start:] if line.startswith("| endpoint"))
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    assert tuple(columns) == PRINCIPALS, columns
    matrix: dict[tuple[str, str], dict[str, str]] = {}
    for line in lines[start:]:
        if line.startswith("## ") and line != "## Role matrix":
            break
        match = ROW.match(line)
        if match:
            cells = [c.strip() for c in match.group(3).split("|")]
            matrix[(match.group(1), match.group(2))] = dict(zip(PRINCIPALS, cells, strict=True))
    return matrix


MATRIX = documented_matrix()


def test_the_table_covers_every_v1_route(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    routes = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/v1")
        for method in operations
    }
    documented = {(m, p.replace("{id}", "{X}")) for m, p in MATRIX}
    # The SSE stream follows the allocation row (the note under the table); its own tests are in
    # tests/gridlink/streams/test_endpoints.py.
    documented.add(("GET", "/v1/nodes/{X}/allocation/stream"))
    # The OpenADR webhook authenticates the VTN with its own token (tests/gridlink/openadr).
    documented |= {("GET", "/v1/openadr/notifications"), ("POST", "/v1/openadr/notifications")}
    actual = {(m, re.sub(r"\{[a-z_]+\}", "{X}", p)) for m, p in routes}
    assert actual == documented


def _curtailment(api: Api) -> int:
    body = {"start": iso(T0 + timedelta(hours=2)), "duration_s": 1800, "limit_kw": 60}
    response = api.request("POST", "/v1/curtailments", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _latest_version(api: Api) -> int:
    versions = api.client.get("/v1/budgets", headers=api.token("admin")).json()
    return int(versions[0]["id"])


_REPORT_WINDOW = {"start": iso(T0 - timedelta(hours=1)), "end": iso(T0)}


def _report(api: Api) -> int:
    response = api.request("POST", "/v1/reports", json=_REPORT_WINDOW)
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


def _call(api: Api, method: str, path: str, own: dict[str, Any], headers: dict[str, str]) -> Any:
    node_id = own["id"]
    sample = {"ts": iso(api.clock.now), "power_w": 3000.0, "throughput_tok_s": 900.0}
    builders: dict[tuple[str, str], Callable[[], tuple[str, dict[str, Any] | None]]] = {
        ("POST", "/v1/curtailments"): lambda: (
            "/v1/curtailments",
            {"start": iso(T0 + timedelta(hours=3)), "duration_s": 600, "reduction_pct": 10},
        ),
        ("GET", "/v1/curtailments"): lambda: ("/v1/curtailments", None),
        ("GET", "/v1/curtailments/{id}"): lambda: (f"/v1/curtailments/{_curtailment(api)}", None),
        ("PATCH", "/v1/curtailments/{id}"): lambda: (
            f"/v1/curtailments/{_curtailment(api)}",
            {"limit_kw": 55},
        ),
        ("DELETE", "/v1/curtailments/{id}"): lambda: (
            f"/v1/curtailments/{_curtailment(api)}",
            None,
        ),
        ("GET", "/v1/timeline"): lambda: ("/v1/timeline", None),
        ("GET", "/v1/budgets"): lambda: ("/v1/budgets", None),
        ("GET", "/v1/budgets/{id}"): lambda: (f"/v1/budgets/{_latest_version(api)}", None),
        ("GET", "/v1/nodes"): lambda: ("/v1/nodes", None),
        ("POST", "/v1/nodes"): lambda: (
            "/v1/nodes",
            {
                "name": own["name"],
                "gpu_type": own["gpu_type"],
                "gpu_count": own["gpu_count"],
                "gpu_min_cap_w": own["gpu_min_cap_w"],
                "gpu_max_cap_w": own["gpu_max_cap_w"],
                "idle_power_w": own["idle_power_w"],
            },
        ),
        ("GET", "/v1/nodes/{id}"): lambda: (f"/v1/nodes/{node_id}", None),
        ("GET", "/v1/nodes/{id}/allocation"): lambda: (f"/v1/nodes/{node_id}/allocation", None),
        ("POST", "/v1/nodes/{id}/telemetry"): lambda: (
            f"/v1/nodes/{node_id}/telemetry",
            {"samples": [sample]},
        ),
        ("GET", "/v1/nodes/{id}/telemetry/history"): lambda: (
            f"/v1/nodes/{node_id}/telemetry/history",
            None,
        ),
        ("GET", "/v1/facility/power"): lambda: ("/v1/facility/power", None),
        ("GET", "/v1/audit"): lambda: ("/v1/audit", None),
        ("GET", "/v1/reports"): lambda: ("/v1/reports", None),
        ("GET", "/v1/reports/{id}"): lambda: (f"/v1/reports/{_report(api)}", None),
        ("POST", "/v1/reports"): lambda: ("/v1/reports", _REPORT_WINDOW),
        ("POST", "/v1/prices"): lambda: (
            "/v1/prices",
            {
                "series_id": "matrix",
                "currency": "USD",
                "intervals": [{"start": iso(T0), "duration_s": 3600, "price": 0.1}],
            },
        ),
        ("GET", "/v1/prices"): lambda: ("/v1/prices", None),
        ("GET", "/v1/openadr/events"): lambda: ("/v1/openadr/events", None),
    }
    url, body = builders[(method, path)]()
    return api.client.request(method, url, headers=headers, json=body)


def test_role_matrix(api: Api) -> None:
    own = api.register_node("own-node")
    other = api.register_node("other-node")
    headers = {
        "admin": api.token("admin"),
        "manager": api.token("manager"),
        "node (own)": api.token("node", own["id"]),
        "node (other)": api.token("node", other["id"]),
        "auditor": api.token("auditor"),
        "none": {},
    }
    wrong = []
    for method, path in sorted(MATRIX):
        for principal in PRINCIPALS:
            response = _call(api, method, path, own, headers[principal])
            expected = MATRIX[(method, path)][principal]
            if expected == "allow":
                ok = 200 <= response.status_code < 300
            else:
                ok = response.status_code == int(expected)
            if response.status_code == 401:
                ok = ok and response.headers.get("WWW-Authenticate") == "Bearer"
            if not ok:
                wrong.append((method, path, principal, expected, response.status_code))
    assert len(MATRIX) == 22
    assert wrong == []


def test_revoked_and_unknown_tokens_are_401(api: Api) -> None:
    from gridlink.auth.principal import SYSTEM
    from gridlink.auth.service import authenticate, revoke_token

    headers = api.token("auditor")
    assert api.client.get("/v1/timeline", headers=headers).status_code == 200
    principal = authenticate(api.session, headers["Authorization"].removeprefix("Bearer "))
    assert principal is not None and principal.token_id is not None
    revoke_token(api.session, principal.token_id, actor=SYSTEM, now=api.clock.now)
    api.session.commit()
    assert api.client.get("/v1/timeline", headers=headers).status_code == 401
    bogus = {"Authorization": "Bearer glk_not-a-real-token"}
    assert api.client.get("/v1/timeline", headers=bogus).status_code == 401
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert api.client.get("/v1/timeline", headers=basic).status_code == 401


def test_public_endpoints_need_no_token(api: Api) -> None:
    for url in ("/healthz", "/docs", "/openapi.json"):
        assert api.client.get(url).status_code == 200, url
