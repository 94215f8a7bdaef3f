"""OpenADR reports carry the audit report's figures (baseline, delivered), with the pre-event
average only as the fallback."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth.principal import Principal
from gridlink.models.openadr import OpenAdrEvent
from gridlink.openadr.figures import settlement_interval_s
from gridlink.openadr.ven import OpenAdrVen
from gridlink.reports import service as audit_reports
from tests.gridlink.conftest import T0, Api
from tests.gridlink.openadr.conftest import event_body, ven_settings
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import VtnServer
from tests.gridlink.reports.fleet import add_node, add_samples

LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [60]}]
DESCRIPTORS = [
    {"payloadType": p, "readingType": r, "units": u}
    for p, r, u in (
        ("USAGE", "DIRECT_READ", "KWH"),
        ("DEMAND", "MEAN", "KW"),
        ("BASELINE", "ESTIMATED", "KW"),
        ("DELTA_USAGE", "ESTIMATED", "KWH"),
    )
]
START = T0 + timedelta(hours=1)


def _fleet_and_event(db_session: Session, vtn: FakeVtn) -> None:
    for name in ("n1", "n2"):
        node = add_node(db_session, name)
        # 3 kW at a demand of 500 tok/s before; 2 kW during while the demand rises to 600
        add_samples(
            db_session,
            node.id,
            T0,
            START + timedelta(hours=1),
            power_w=lambda at: 3000.0 if at < START else 2000.0,
            demand_tok_s=lambda at: 500.0 if at < START else 600.0,
        )
    body = event_body(START, LIMIT, reportDescriptors=DESCRIPTORS)
    body["intervals"] = [
        {"id": i, "intervalPeriod": {"start": (START + timedelta(minutes=30 * i)).isoformat()}}
        | {"payloads": LIMIT}
        for i in (0, 1)
    ]
    body["intervalPeriod"]["duration"] = "PT30M"
    vtn.put_event("ev-1", body)


def _ven(api: Api, url: str, factory: sessionmaker[Session], **overrides: Any) -> OpenAdrVen:
    settings = ven_settings(api, url, **overrides)
    return OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)


def _posted(vtn: FakeVtn) -> list[dict[str, float]]:
    (report,) = vtn.reports
    return [
        {p["type"]: p["values"][0] for p in interval["payloads"]}
        for interval in report["resources"][0]["intervals"]
    ]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_reported_values_equal_the_audit_reports(
    api: Api,
    vtn: FakeVtn,
    vtn_server: VtnServer,
    factory: sessionmaker[Session],
    db_session: Session,
) -> None:
    _fleet_and_event(db_session, vtn)
    ven = _ven(api, vtn_server.url, factory)
    try:
        assert ven.poll()
        api.clock.set(START + timedelta(hours=1, minutes=1))
        assert ven.report() == 1
    finally:
        ven.close()
    assert vtn.violations == []
    record = db_session.scalars(select(OpenAdrEvent)).one()
    assert record.event_id is not None
    assert record.reports_posted[0]["baselines"] == ["audit:model@900"]
    # the audit report on the same event, stored as the API and the scheduler store it
    stored = audit_reports.event_report(
        db_session,
        record.event_id,
        interval_s=900,
        regenerate=True,
        actor=Principal(token_id=None, role="system", name="test"),
        now=api.clock.now,
        settings=api.settings,
    )
    rows = audit_reports.delivered_rows(stored.body)
    assert len(rows) == 4  # two 30-minute OpenADR intervals, four 15-minute settlement rows
    posted = _posted(vtn)
    assert len(posted) == 2
    for k, values in enumerate(posted):
        half = rows[2 * k : 2 * k + 2]
        baseline = _mean([r["baseline_kw"]["model"] for r in half])
        measured = _mean([r["measured_kw"] for r in half])
        delivered = _mean([r["delivered_kw"]["model"] for r in half])
        assert values["BASELINE"] == pytest.approx(baseline, abs=1e-6)
        assert values["DEMAND"] == pytest.approx(measured, abs=1e-6)
        assert values["USAGE"] == pytest.approx(measured * 0.5, abs=1e-6)
        assert values["DELTA_USAGE"] == pytest.approx(-delivered * 0.5, abs=1e-5)
    # the worked example's physics: 10 kW overhead + 2 x 2 kW measured, model 2 x 3.4 kW
    assert posted[0]["DEMAND"] == pytest.approx(14.0)
    assert posted[0]["BASELINE"] == pytest.approx(16.8)


def test_without_audit_figures_the_pre_event_average_is_the_fallback(
    api: Api,
    vtn: FakeVtn,
    vtn_server: VtnServer,
    factory: sessionmaker[Session],
    db_session: Session,
) -> None:
    # high X of Y needs comparable days; there are none, so the audit has no such baseline
    _fleet_and_event(db_session, vtn)
    ven = _ven(api, vtn_server.url, factory, openadr_report_baseline="high_x_of_y")
    try:
        assert ven.poll()
        api.clock.set(START + timedelta(hours=1, minutes=1))
        assert ven.report() == 1
    finally:
        ven.close()
    record = db_session.scalars(select(OpenAdrEvent)).one()
    assert record.reports_posted[0]["baselines"] == ["pre_event_average"]
    for values in _posted(vtn):
        assert values["BASELINE"] == pytest.approx(10.0 + 2 * 3.0)  # the 15 min before
        assert values["DEMAND"] == pytest.approx(14.0)
        assert values["DELTA_USAGE"] == pytest.approx((14.0 - 16.0) * 0.5)


def _span(start: datetime, minutes: float) -> tuple[int, datetime, datetime]:
    return (0, start, start + timedelta(minutes=minutes))


def test_the_settlement_interval_fits_the_report_intervals() -> None:
    assert settlement_interval_s([_span(START, 60)], 900) == 900
    assert settlement_interval_s([_span(START + timedelta(minutes=5), 60)], 900) == 300
    # whole minutes only (what the audit reports accept): a 90 s interval has none that fits
    assert settlement_interval_s([_span(START, 1.5)], 900) is None
    assert settlement_interval_s([_span(START, 2)], 900) == 120
    # randomizeStart moved it off the second grid: no audit figures, the fallback applies
    assert settlement_interval_s([_span(START + timedelta(microseconds=5), 60)], 900) is None
    assert settlement_interval_s([_span(START + timedelta(seconds=7), 60)], 900) is None
