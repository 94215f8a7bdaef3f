"""/v1/reports over HTTP: a fleet posting telemetry as nodes do; reports in three formats."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from tests.gridlink.conftest import T0, Api, iso

START = T0 + timedelta(hours=1)


def _post_fleet(api: Api) -> int:
    """Two nodes posting every 10 s for 2 h (3 kW, 2 kW in the event hour) and a 1-h event."""
    api.settings.report_sample_period_s = 10.0
    api.settings.report_pre_event_window_min = 30.0
    for name in ("a", "b"):
        node = api.register_node(name, stock_curve=[[0.0, 1000.0], [1000.0, 5000.0]])
        samples = []
        for k in range(720):
            at = T0 + timedelta(seconds=10 * k)
            during = START <= at < START + timedelta(hours=1)
            samples.append(
                {
                    "ts": iso(at),
                    "power_w": 2000.0 if during else 3000.0,
                    "throughput_tok_s": 500.0,
                    "demand_tok_s": 500.0,
                    "qos_violation": during and k % 10 == 0,
                }
            )
        api.clock.set(T0 + timedelta(hours=2))
        response = api.request(
            "POST", f"/v1/nodes/{node['id']}/telemetry", json={"samples": samples}
        )
        assert response.status_code == 201, response.text
    body = {"start": iso(START), "duration_s": 3600, "limit_kw": 14.5}
    response = api.request("POST", "/v1/curtailments", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_generate_list_and_read_in_every_format(api: Api) -> None:
    event_id = _post_fleet(api)
    created = api.request("POST", "/v1/reports", json={"event_id": event_id, "interval_s": 900})
    assert created.status_code == 201, created.text
    report = created.json()
    assert report["version"] == 1 and report["trigger"] == "request"
    totals = report["body"]["totals"]
    assert totals["delivered_kwh"]["model"] == 2.0 and totals["delivered_kwh"]["pre_event"] == 2.0
    assert report["body"]["service"]["during"]["qos_violated_windows"] == 72
    # The report read what the API took: the registered stock_curve and the samples' demand_tok_s.
    model = report["body"]["baselines"]["model"]
    assert model == {"stock_curves": {"reported": 2}, "demand_fallback_node_intervals": 0}
    assert report["body"]["service"]["during"]["tokens_demanded"] == 2 * 3600 * 500.0

    again = api.request("POST", "/v1/reports", json={"event_id": event_id, "interval_s": 900})
    assert again.status_code == 200 and again.json()["content_hash"] == report["content_hash"]

    listed = api.request("GET", f"/v1/reports?event_id={event_id}", role="auditor").json()
    assert [r["id"] for r in listed] == [report["id"]]

    as_csv = api.request("GET", f"/v1/reports/{report['id']}?format=csv", role="manager")
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 4 * 4  # four 15-min intervals x four baselines
    assert {r["baseline"] for r in rows} == {"contracted", "pre_event", "high_x_of_y", "model"}
    model = [r for r in rows if r["baseline"] == "model"]
    assert [float(r["delivered_kw"]) for r in model] == [2.0] * 4
    assert all(r["compliant"] == "true" for r in model)

    page = api.request("GET", f"/v1/reports/{report['id']}?format=html", role="auditor")
    assert page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and report["content_hash"] in page.text
    assert "requested limit" in page.text


def test_bad_requests_name_the_field(api: Api) -> None:
    both = {"event_id": 1, "start": iso(T0), "end": iso(START)}
    response = api.request("POST", "/v1/reports", json=both)
    assert response.status_code == 422 and "event_id" in response.text
    odd = {"start": iso(T0), "end": iso(START), "interval_s": 7 * 60}
    response = api.request("POST", "/v1/reports", json=odd)
    assert response.status_code == 422 and "interval_s" in response.text
    assert api.request("POST", "/v1/reports", json={"event_id": 999}).status_code == 404
    assert api.request("GET", "/v1/reports/999").status_code == 404
    backwards = {"start": iso(START), "end": iso(T0)}
    response = api.request("POST", "/v1/reports", json=backwards)
    assert response.status_code == 422 and "end" in response.text
