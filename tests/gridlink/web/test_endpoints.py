"""The page shell, its /ui endpoints and /docs, through the API test client (both backends)."""

from __future__ import annotations

from datetime import timedelta

from tests.gridlink.conftest import Api


def test_the_shell_is_public_and_holds_no_data(api: Api) -> None:
    response = api.client.get("/")
    assert response.status_code == 200
    html = response.text
    assert 'id="signin-form"' in html and 'type="password"' in html
    assert "/static/vendor/uplot/uPlot.iife.min.js" in html
    assert "glk_" not in html and "token=" not in html
    assert api.client.get("/static/vendor/uplot/uPlot.iife.min.js").status_code == 200
    assert api.client.get("/static/page.js").status_code == 200


def test_docs_load_swagger_ui_from_this_gateway(api: Api) -> None:
    html = api.client.get("/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "/static/vendor/swagger-ui/swagger-ui.css" in html
    assert "cdn" not in html.lower()
    bundle = api.client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    assert api.client.get("/openapi.json").status_code == 200


def test_session_roles(api: Api) -> None:
    manager = api.request("GET", "/ui/session", role="manager").json()
    assert manager == {"role": "manager", "name": "manager:None", "can_write": True}
    assert api.request("GET", "/ui/session", role="auditor").json()["can_write"] is False
    node = api.register_node("n1")
    refused = api.request("GET", "/ui/session", role="node", node_id=node["id"])
    assert refused.status_code == 403
    assert "node token cannot sign in" in refused.json()["detail"]
    assert api.client.get("/ui/session").status_code == 401
    assert api.client.get("/ui/fragments/nodes").status_code == 401


def _curtail(api: Api, **body: object) -> dict[str, object]:
    base = {"start": (api.clock.now + timedelta(hours=1)).isoformat(), "duration_s": 3600}
    response = api.request("POST", "/v1/curtailments", json={**base, **body})
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def test_events_fragment_has_write_controls_only_for_writers(api: Api) -> None:
    api.register_node("n1")
    _curtail(api, limit_kw=50, name="evening peak")
    for_manager = api.request("GET", "/ui/fragments/events", role="manager").text
    assert "evening peak" in for_manager and 'class="cancel"' in for_manager
    for_auditor = api.request("GET", "/ui/fragments/events", role="auditor").text
    assert "evening peak" in for_auditor and "<button" not in for_auditor
    form = api.request("GET", "/ui/fragments/form", role="manager").text
    assert 'id="curtail-form"' in form and 'data-error-for="value"' in form
    assert api.request("GET", "/ui/fragments/form", role="auditor").text.strip() == ""


def test_events_fragment_shows_versions_and_warnings(api: Api) -> None:
    api.register_node("n1")  # 8 x 700 W + 400 W = 6 kW at most; overhead 10 kW
    first = _curtail(api, limit_kw=90, external_id="peak-1")
    changed = api.request("PATCH", f"/v1/curtailments/{first['id']}", json={"limit_kw": 80})
    assert changed.status_code == 200
    html = api.request("GET", "/ui/fragments/events", role="manager").text
    assert "v2" in html and "1 earlier" in html
    assert "will not bind" in html


def test_nodes_fragment_rows(api: Api) -> None:
    node = api.register_node("gpu-a")
    sample = {"ts": api.clock.now.isoformat(), "power_w": 4000.0, "throughput_tok_s": 8000.0}
    posted = api.request("POST", f"/v1/nodes/{node['id']}/telemetry", json={"samples": [sample]})
    assert posted.status_code in (200, 201, 202), posted.text
    html = api.request("GET", "/ui/fragments/nodes", role="auditor").text
    assert 'data-node-id="' in html and "gpu-a" in html
    assert "H100-SXM \u00d7 8" in html
    assert "4.0 kW" in html and "2.0" in html  # power, tok/J


def test_history_has_measured_power_and_the_limit_steps(api: Api) -> None:
    node = api.register_node("gpu-a")
    now = api.clock.now
    samples = [
        {"ts": (now - timedelta(minutes=m)).isoformat(), "power_w": 5000.0, "throughput_tok_s": 1.0}
        for m in range(1, 30)
    ]
    api.request("POST", f"/v1/nodes/{node['id']}/telemetry", json={"samples": samples})
    _curtail(api, limit_kw=50)
    history = api.request("GET", "/ui/history?hours=1&ahead_h=3", role="manager").json()
    assert history["power"]["t"] and set(history["power"]["kw"]) == {15.0}  # + 10 kW overhead
    limits = [segment[2] for segment in history["limit"]]
    assert limits == [100.0, 50.0, 100.0]
    assert history["now"] == now.timestamp()
    too_long = api.request("GET", "/ui/history?hours=500", role="manager")
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["query", "hours"]


def test_reports_section_without_a_reports_api(api: Api) -> None:
    html = api.request("GET", "/ui/fragments/reports", role="auditor").text
    assert "No reports yet" in html
