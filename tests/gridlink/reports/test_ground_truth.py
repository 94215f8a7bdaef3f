"""Ground truth: the same simulated fleet and load, same seeds, run with and without the event.

The true delivered energy is the difference of the two runs' energy over the event. The report,
generated from the with-event run's telemetry alone (plus two earlier comparable days and the
nodes' stock curves from their profile), must put the model counterfactual within 5 % of it, and
shows how far the other baselines land on the same run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

import pytest
from sqlalchemy.orm import Session

from gridlink.auth.principal import SYSTEM
from gridlink.reports import service
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import repository as telemetry_repository
from tests.gridlink.reports.fleet import add_event, add_node
from tests.gridlink.reports.simfleet import FleetRun, energy_between, run_fleet, stock_curve

pytestmark = pytest.mark.slow

SEEDS = (1, 2)
START = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # a Wednesday; the recording starts here
PRE_S = EVENT_S = 1200
EVENT_START = START + timedelta(seconds=PRE_S)
EVENT_END = EVENT_START + timedelta(seconds=EVENT_S)
CAP_W = 350.0  # what the nodes do during the event: every GPU capped at half its 700 W


def load(t: float) -> float:
    """Offered load ramping from 35 % to 65 % of capacity: the pre-event average lags it."""
    return 0.35 + 0.30 * t / (PRE_S + EVENT_S)


@lru_cache(maxsize=1)
def simulated() -> tuple[list[list[float]], FleetRun, FleetRun, list[FleetRun]]:
    curve = stock_curve((0.05, 0.25, 0.45, 0.65, 0.85))
    duration = PRE_S + EVENT_S
    with_event = run_fleet(
        SEEDS, start=START, duration_s=duration, load_frac=load, event=(PRE_S, duration, CAP_W)
    )
    without = run_fleet(SEEDS, start=START, duration_s=duration, load_frac=load, event=None)
    days = []
    for back, scale in ((1, 0.95), (2, 1.1)):  # two earlier weekdays, other seeds and levels
        day_start = START + timedelta(days=-back, seconds=PRE_S - 600)
        days.append(
            run_fleet(
                tuple(s + 10 * back for s in SEEDS),
                start=day_start,
                duration_s=600 + EVENT_S,
                load_frac=lambda t, s=scale: s * load(t + PRE_S - 600),
                event=None,
            )
        )
    return curve, with_event, without, days


def test_model_counterfactual_within_5_percent_of_the_truth(
    db_session: Session, settings: GridlinkSettings
) -> None:
    curve, with_event, without, days = simulated()
    cfg = settings.model_copy(
        update={
            "report_sample_period_s": 1.0,
            "report_pre_event_window_min": PRE_S / 60,
            "report_hxy_x": 2,
            "report_hxy_y": 2,
            "report_hxy_search_days": 3,
            "report_hxy_adjustment_h": 600 / 3600,
            "report_hxy_adjustment_gap_h": 0.0,
        }
    )
    node_ids = [add_node(db_session, f"sim-{s}", stock_curve=curve).id for s in SEEDS]
    for run in (with_event, *days):
        rows = [
            {"node_id": node_id, **sample}
            for node_id, samples in zip(node_ids, run.samples, strict=True)
            for sample in samples
        ]
        telemetry_repository.bulk_insert(db_session, rows)
    gpu_kw = sum(s["power_w"] for n in with_event.samples for s in n[:PRE_S]) / PRE_S / 1000
    limit_kw = cfg.facility_overhead_kw + 0.7 * gpu_kw
    event_id = add_event(db_session, cfg, EVENT_START, EVENT_S, limit_kw=limit_kw, now=START)
    inputs = service.event_inputs(db_session, event_id, interval_s=300, settings=cfg)
    report, _ = service.store(db_session, inputs, trigger="request", actor=SYSTEM, now=EVENT_END)

    truth_kwh = energy_between(without, EVENT_START, EVENT_END) - energy_between(
        with_event, EVENT_START, EVENT_END
    )
    delivered = report.body["totals"]["delivered_kwh"]
    errors = {name: (kwh - truth_kwh) / truth_kwh for name, kwh in delivered.items()}
    print(f"\ntrue delivered {truth_kwh:.4f} kWh")
    for name, kwh in delivered.items():
        print(f"  {name:12s} {kwh:9.4f} kWh  error {errors[name]:+8.1%}")
    assert report.body["baselines"]["high_x_of_y"]["selected_days"] == ["2026-06-29", "2026-06-30"]
    assert abs(errors["model"]) < 0.05
    # The load ramps up through the event: the flat pre-event average under-states the baseline.
    assert errors["pre_event"] < -0.05
    assert abs(errors["contracted"]) > 1.0
    assert all(v is not None for v in errors.values())
    # The event cost service: tokens served fell short of demand during the cap.
    cost = report.body["service"]
    assert cost["during"]["served_share"] < cost["before"]["served_share"]
