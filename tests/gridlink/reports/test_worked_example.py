"""The worked example of docs/reports.md, computed by the pure core: the page's table is pinned."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from gridlink.reports.baselines import ComparableDay
from gridlink.reports.compute import build_report
from gridlink.reports.inputs import (
    BASELINES,
    NodeInterval,
    NodeProfile,
    ReportConfig,
    ReportInputs,
    Requested,
    canonical_json,
    inputs_hash,
    plain,
    sha256_hex,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "reports.md"
GRID_START = datetime(2026, 7, 1, 13, 30, tzinfo=UTC)  # a Wednesday
EVENT_START = GRID_START + timedelta(minutes=30)
CURVE = ((0.0, 1000.0), (1000.0, 5000.0))


def example() -> ReportInputs:
    cells = []
    for node_id in (1, 2):
        for index in range(6):
            during = index >= 2
            cells.append(
                NodeInterval(
                    node_id=node_id,
                    index=index,
                    samples=900,
                    power_w=2000.0 if during else 3000.0,
                    throughput_tok_s=450.0 if during else 500.0,
                    demand_tok_s=600.0 if during else 500.0,
                    qos_violations=30 if during else 0,
                )
            )
    days = (
        ComparableDay(date(2026, 6, 30), (20.0,) * 4, 20.0, had_event=True),
        ComparableDay(date(2026, 6, 29), (15.0,) * 4, 14.0),
        ComparableDay(date(2026, 6, 28), (), None, same_day_type=False),
        ComparableDay(date(2026, 6, 27), (), None, same_day_type=False),
        ComparableDay(date(2026, 6, 26), (17.0,) * 4, 16.0),
        ComparableDay(date(2026, 6, 25), (16.0,) * 4, 15.0),
    )
    return ReportInputs(
        subject="event:manual:example@900",
        kind="event",
        event=None,
        grid_start=GRID_START,
        event_start_index=2,
        interval_count=6,
        requested=(Requested(EVENT_START, EVENT_START + timedelta(hours=1), "limit_kw", 14.5, 1),),
        nodes=(NodeProfile(1, "a", CURVE, "reported"), NodeProfile(2, "b", CURVE, "reported")),
        node_intervals=tuple(cells),
        comparable_days=days,
        event_day_adjustment_kw=16.0,
        config=ReportConfig(
            interval_s=900,
            timezone="UTC",
            sample_period_s=1.0,
            min_coverage=0.9,
            tolerance_frac=0.02,
            contracted_kw=40.0,
            overhead_kw=10.0,
            hxy_x=2,
            hxy_y=3,
            hxy_adjustment_cap=0.2,
        ),
    )


def test_the_worked_example_matches_the_docs() -> None:
    body = build_report(example())
    totals = body["totals"]
    first = next(r for r in body["intervals"] if r["phase"] == "event")
    assert first["measured_kw"] == 14.0
    lines = DOC.read_text(encoding="utf-8").splitlines()
    for name in BASELINES:
        row = (
            f"| {name} | {first['baseline_kw'][name]} | {first['delivered_kw'][name]} "
            f"| {totals['delivered_kwh'][name]} | {totals['compliance_share'][name]} |"
        )
        assert row in lines, row
    assert body["baselines"]["high_x_of_y"]["selected_days"] == ["2026-06-25", "2026-06-26"]
    during = body["service"]["during"]
    assert during["served_share"] == 0.75 and during["qos_violated_windows"] == 240
    assert f"| during | {during['served_share']} | {during['qos_violated_share']} |" in lines


def test_the_inputs_hash_is_the_hash_of_their_asdict() -> None:
    """The fast conversion gives the JSON ``dataclasses.asdict`` gives: stored hashes stay valid."""
    inputs = example()
    assert canonical_json(plain(inputs)) == canonical_json(asdict(inputs))
    assert inputs_hash(inputs) == sha256_hex(canonical_json(asdict(inputs)))
