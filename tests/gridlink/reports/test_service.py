"""Reports from the database: figures, hashes and versions, gaps, presence, event lifecycles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from gridlink.auth.principal import SYSTEM
from gridlink.reports import service
from gridlink.reports.compute import build_report
from gridlink.reports.inputs import content_hash, inputs_hash
from gridlink.settings import GridlinkSettings
from tests.gridlink.reports.fleet import (
    add_event,
    add_node,
    add_samples,
    cancel_event,
    change_event,
)

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)  # a Wednesday
START = T0 + timedelta(hours=2)
END = START + timedelta(hours=1)


def _fleet(session: Session, nodes: int = 4) -> list[int]:
    """Nodes at 3 kW (stock at their 500 tok/s demand) before and after, 2 kW during."""
    ids = []
    for n in range(nodes):
        node = add_node(session, f"node-{n}")
        ids.append(node.id)

        def power(at: datetime) -> float:
            return 2000.0 if START <= at < END else 3000.0

        add_samples(session, node.id, T0, END + timedelta(minutes=30), power_w=power)
    return ids


def _report(session: Session, settings: GridlinkSettings, event_id: int) -> dict:
    inputs = service.event_inputs(session, event_id, interval_s=900, settings=settings)
    report, _ = service.store(session, inputs, trigger="request", actor=SYSTEM, now=END)
    return report.body


def test_figures_against_each_baseline(db_session: Session, report_settings) -> None:
    _fleet(db_session)
    event_id = add_event(db_session, report_settings, START, 3600, limit_kw=18.0, now=T0)
    body = _report(db_session, report_settings, event_id)
    event_rows = [r for r in body["intervals"] if r["phase"] == "event"]
    assert len(event_rows) == 4 and len(body["intervals"]) == 8  # 1 h before, 1 h during
    for row in event_rows:
        assert row["measured_kw"] == 18.0  # 10 kW overhead + 4 x 2 kW
        assert row["baseline_kw"] == {
            "contracted": 100.0,
            "pre_event": 22.0,
            "high_x_of_y": None,
            "model": 22.0,
        }
        assert row["requested"] == {"kind": "limit_kw", "value": 18.0, "fraction": 1.0}
        assert row["compliant"]["model"] is True
    totals = body["totals"]
    assert totals["delivered_kwh"] == {
        "contracted": 82.0,
        "pre_event": 4.0,
        "high_x_of_y": None,
        "model": 4.0,
    }
    assert totals["compliance_share"]["model"] == 1.0
    assert totals["incomplete_intervals"] == 0
    assert body["baselines"]["high_x_of_y"]["note"].startswith("only 0 eligible")
    node = body["nodes"][0]
    assert node["measured_kwh"] == 2.0 and node["model_kwh"] == 3.0
    assert node["delivered_kwh_model"] == 1.0 and node["delivered_kwh_pre_event"] == 1.0
    assert body["service"]["during"]["tokens_served"] == 4 * 500.0 * 3600


def test_regenerating_reproduces_the_hash_and_late_telemetry_makes_a_new_version(
    db_session: Session, report_settings
) -> None:
    ids = _fleet(db_session)
    event_id = add_event(db_session, report_settings, START, 3600, limit_kw=18.0, now=T0)
    inputs = service.event_inputs(db_session, event_id, interval_s=900, settings=report_settings)
    first, created = service.store(db_session, inputs, trigger="scheduled", actor=SYSTEM, now=END)
    assert created and first.version == 1 and first.trigger == "scheduled"
    again = service.event_inputs(db_session, event_id, interval_s=900, settings=report_settings)
    assert inputs_hash(again) == first.inputs_hash
    assert content_hash(build_report(again), inputs_hash(again)) == first.content_hash
    same, created = service.store(db_session, again, trigger="request", actor=SYSTEM, now=END)
    assert not created and same.id == first.id

    # A late sample for the event: a correction, linked to the version it replaces.
    add_samples(db_session, ids[0], START + timedelta(seconds=5), START + timedelta(seconds=6))
    late = service.event_inputs(db_session, event_id, interval_s=900, settings=report_settings)
    second, created = service.store(db_session, late, trigger="request", actor=SYSTEM, now=END)
    assert created and second.version == 2 and second.previous_id == first.id
    assert second.trigger == "correction" and second.content_hash != first.content_hash
    assert first.body["totals"] != second.body["totals"]


def test_gaps_are_counted_not_filled(db_session: Session, report_settings) -> None:
    ids = _fleet(db_session, nodes=3)
    gap = add_node(db_session, "gappy")
    add_samples(db_session, gap.id, T0, START + timedelta(minutes=20), power_w=3000.0)
    add_samples(db_session, gap.id, START + timedelta(minutes=35), END + timedelta(minutes=30))
    event_id = add_event(db_session, report_settings, START, 3600, limit_kw=18.0, now=T0)
    body = _report(db_session, report_settings, event_id)
    rows = [r for r in body["intervals"] if r["phase"] == "event"]
    # 2:15-2:30: gappy reported 5 minutes of 15 (partial); nothing 2:20-2:35 but it is
    # present in both intervals, so none is missing; 2:30-2:45 has 10 minutes (partial).
    assert [r["nodes_partial"] for r in rows] == [0, 1, 1, 0]
    assert [r["complete"] for r in rows] == [True, False, False, True]
    assert body["totals"]["incomplete_intervals"] == 2
    assert rows[1]["measured_kw"] == 10.0 + 3 * 2.0 + 3.0  # gappy's samples were at 3 kW
    assert len(ids) == 3


def test_a_missing_interval_is_flagged_and_measured_from_who_reported(
    db_session: Session, report_settings
) -> None:
    _fleet(db_session, nodes=2)
    node = add_node(db_session, "silent-for-a-while")
    add_samples(db_session, node.id, T0, START + timedelta(minutes=15), power_w=3000.0)
    add_samples(
        db_session, node.id, START + timedelta(minutes=30), END, power_w=2000.0
    )  # nothing 2:15-2:30
    event_id = add_event(db_session, report_settings, START, 3600, limit_kw=18.0, now=T0)
    body = _report(db_session, report_settings, event_id)
    row = [r for r in body["intervals"] if r["phase"] == "event"][1]
    assert row["nodes_missing"] == 1 and row["nodes_reporting"] == 2 and not row["complete"]
    assert row["measured_kw"] == 14.0 and row["baseline_kw"]["model"] == 16.0
    assert body["totals"]["delivered_kwh_in_incomplete_intervals"]["model"] == 0.5


def test_nodes_joining_and_leaving(db_session: Session, report_settings) -> None:
    _fleet(db_session, nodes=2)
    joiner = add_node(db_session, "joiner")
    leaver = add_node(db_session, "leaver")
    add_samples(db_session, joiner.id, START + timedelta(minutes=30), END, power_w=2000.0)
    add_samples(db_session, leaver.id, T0, START + timedelta(minutes=30), power_w=2000.0)
    event_id = add_event(db_session, report_settings, START, 3600, limit_kw=18.0, now=T0)
    body = _report(db_session, report_settings, event_id)
    assert body["totals"]["incomplete_intervals"] == 0  # absence is not a gap
    rows = [r for r in body["intervals"] if r["phase"] == "event"]
    assert [r["nodes_reporting"] for r in rows] == [3, 3, 3, 3]
    nodes = {n["name"]: n for n in body["nodes"]}
    assert nodes["joiner"]["present_from"] == (START + timedelta(minutes=30)).isoformat()
    assert nodes["joiner"]["pre_event_kw"] is None
    assert nodes["leaver"]["present_to"] == (START + timedelta(minutes=30)).isoformat()
    assert nodes["joiner"]["delivered_kwh_model"] == 0.5  # 3 kW stock - 2 kW for 30 min


def test_event_cancelled_midway_asks_for_nothing_afterwards(
    db_session: Session, report_settings
) -> None:
    _fleet(db_session)
    event_id = add_event(db_session, report_settings, START, 3600, limit_kw=18.0, now=T0)
    cancel_event(db_session, event_id, now=START + timedelta(minutes=30))
    body = _report(db_session, report_settings, event_id)
    assert body["event"]["status"] == "cancelled"
    assert body["window"]["end"] == (START + timedelta(minutes=30)).isoformat()
    rows = [r for r in body["intervals"] if r["phase"] == "event"]
    assert len(rows) == 2 and all(r["requested"]["fraction"] == 1.0 for r in rows)
    assert body["totals"]["delivered_kwh"]["model"] == 2.0


def test_a_changed_event_applies_each_version_while_it_was_in_force(
    db_session: Session, report_settings
) -> None:
    _fleet(db_session)
    v1 = add_event(db_session, report_settings, START, 3600, limit_kw=18.0, now=T0)
    v2 = change_event(
        db_session, report_settings, v1, now=START + timedelta(minutes=30), limit_kw=16.0
    )
    assert v2 != v1
    body = _report(db_session, report_settings, v1)  # any version names the lineage
    assert [v["version"] for v in body["event"]["versions"]] == [1, 2]
    rows = [r for r in body["intervals"] if r["phase"] == "event"]
    assert [r["requested"]["value"] for r in rows] == [18.0, 18.0, 16.0, 16.0]
    assert [r["compliant"]["model"] for r in rows] == [True, True, False, False]
    assert body["totals"]["compliance_share"]["model"] == 0.5
    via_v2 = service.event_inputs(db_session, v2, interval_s=900, settings=report_settings)
    assert via_v2.subject == f"event:{body['event']['key']}@900"
    _, created = service.store(db_session, via_v2, trigger="request", actor=SYSTEM, now=END)
    assert not created  # the same report, whichever version named the event


def test_overlapping_events_name_each_other(db_session: Session, report_settings) -> None:
    _fleet(db_session)
    first = add_event(db_session, report_settings, START, 3600, limit_kw=18.0, now=T0)
    second = add_event(
        db_session, report_settings, START + timedelta(minutes=30), 3600, reduction_kw=5.0, now=T0
    )
    one = _report(db_session, report_settings, first)
    two = _report(db_session, report_settings, second)
    assert [e["id"] for e in one["overlapping_events"]] == [second]
    assert [e["id"] for e in two["overlapping_events"]] == [first]
    rows = [r for r in two["intervals"] if r["phase"] == "event" and r["requested"]]
    # Each report judges its own request: 5 kW off each baseline.
    assert rows[0]["requested_limit_kw"]["model"] == 17.0
    assert rows[0]["requested_limit_kw"]["contracted"] == 95.0


def test_an_event_across_the_dst_change_is_stored_in_utc_and_reported_local(
    db_session: Session, report_settings
) -> None:
    cfg = report_settings.model_copy(
        update={"report_timezone": "America/New_York", "report_hxy_adjustment_gap_h": 0.0}
    )
    start = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 01:00 EDT; clocks fall back at 06:00 UTC
    end = start + timedelta(hours=2)  # 02:00 EST: two hours, one of them repeated on the clock
    node = add_node(db_session, "n1")
    add_samples(db_session, node.id, start - timedelta(hours=3), end, period_s=10.0)
    # Comparable weekend days seen at 01:00 local: 05:00 UTC on those EDT days.
    levels = {31: 3500.0, 25: 3300.0, 24: 3100.0}
    for day, power in levels.items():
        local_start = datetime(2026, 10, day, 5, 0, tzinfo=UTC)
        add_samples(
            db_session,
            node.id,
            local_start - timedelta(hours=2),
            local_start + timedelta(hours=2),
            period_s=10.0,
            power_w=power,
        )
    event_id = add_event(db_session, cfg, start, 7200, limit_kw=12.0, now=start - timedelta(days=1))
    body = _report(db_session, cfg, event_id)
    assert body["window"]["start"] == "2026-11-01T05:00:00+00:00"
    assert body["window"]["start_local"] == "2026-11-01T01:00:00-04:00"
    assert body["window"]["end_local"] == "2026-11-01T02:00:00-05:00"
    rows = [r for r in body["intervals"] if r["phase"] == "event"]
    assert len(rows) == 8
    assert rows[0]["start_local"] == "2026-11-01T01:00:00-04:00"
    assert rows[4]["start_local"] == "2026-11-01T01:00:00-05:00"  # the hour again, in EST
    hxy = body["baselines"]["high_x_of_y"]
    assert hxy["selected_days"] == ["2026-10-25", "2026-10-31"]  # the 2 highest of 3 weekend days
    # They average 13.4 kW; the event day's adjustment window (13.0 kW) against theirs (13.4 kW)
    # gives a factor of 0.970, inside the 20 % cap.
    assert hxy["adjustment_capped"] is False
    assert rows[0]["baseline_kw"]["high_x_of_y"] == round(13.4 * 13.0 / 13.4, 4)


def test_delivered_figures_for_the_openadr_reporter(db_session: Session, report_settings) -> None:
    _fleet(db_session)
    event_id = add_event(db_session, report_settings, START, 3600, limit_kw=18.0, now=T0)
    computed = service.delivered_figures(
        db_session, event_id, interval_s=900, settings=report_settings
    )
    assert service.latest_for_event(db_session, event_id, interval_s=900) is None  # not stored
    assert [r["start"] for r in computed] == [
        (START + timedelta(minutes=15 * k)).isoformat() for k in range(4)
    ]
    assert all(r["delivered_kw"]["model"] == 4.0 and r["complete"] for r in computed)
    _report(db_session, report_settings, event_id)
    stored = service.delivered_figures(
        db_session, event_id, interval_s=900, settings=report_settings
    )
    assert stored == computed


def test_a_node_scoped_event_spans_its_window_but_asks_nothing_of_the_facility(
    db_session: Session, report_settings
) -> None:
    """An OpenADR event targeted at one node limits that node (an interval with a node_id):
    the report covers its window, but no facility request is judged for compliance."""
    from gridlink.models.event import Event

    ids = _fleet(db_session)
    event_id = add_event(db_session, report_settings, START, 3600, limit_kw=2.0, now=T0)
    event = db_session.get(Event, event_id)
    assert event is not None
    for interval in event.intervals:
        interval.node_id = ids[0]
    db_session.flush()
    body = _report(db_session, report_settings, event_id)
    assert body["window"]["start"] == START.isoformat()
    assert body["window"]["end"] == END.isoformat()
    rows = [r for r in body["intervals"] if r["phase"] == "event"]
    assert len(rows) == 4 and all(r["requested"] is None for r in rows)
    assert all(share is None for share in body["totals"]["compliance_share"].values())
