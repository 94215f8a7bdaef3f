"""Reports to the VTN: the body of one report, for the intervals a reportDescriptor's timing
picked (``schedule``), from the figures of ``figures`` (the audit report's, or the fallback).

Values per report interval (units converted to what the descriptor asks where it is a unit of
the same quantity):

======================== ========== ============ ==========================================
payloadType               units      readingType  value
======================== ========== ============ ==========================================
USAGE                     KWH        DIRECT_READ  measured facility energy in the interval
DEMAND                    KW         MEAN         measured average facility power
BASELINE                  KW         ESTIMATED    the baseline (``figures``)
DELTA_USAGE               KWH        ESTIMATED    (measured - baseline) energy (negative = reduced)
LOAD_SHED_DELTA_AVAILABLE KW         ESTIMATED    measured power minus the fleet's minimum power
======================== ========== ============ ==========================================

openadr3-client's 3.1 report-payload-descriptor model (``ReportPayloadDescriptor``) is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from openadr3_client.oadr310.models.report.report_payload import ReportPayloadDescriptor
from sqlalchemy.orm import Session

from gridlink.nodes import repository as nodes_repository
from gridlink.openadr.figures import IntervalFigures
from gridlink.openadr.intervals import Window
from gridlink.settings import GridlinkSettings

__all__ = ["REPORTABLE", "build_report", "interval_windows"]

# payloadType -> (quantity, our units, readingType)
REPORTABLE = {
    "USAGE": ("energy", "KWH", "DIRECT_READ"),
    "DEMAND": ("power", "KW", "MEAN"),
    "BASELINE": ("power", "KW", "ESTIMATED"),
    "DELTA_USAGE": ("energy", "KWH", "ESTIMATED"),
    "LOAD_SHED_DELTA_AVAILABLE": ("power", "KW", "ESTIMATED"),
}
SCALE = {"power": {"KW": 1.0, "W": 1000.0, "MW": 0.001}, "energy": {"KWH": 1.0, "MWH": 0.001}}


def interval_windows(windows: Sequence[Window]) -> list[tuple[int, datetime, datetime]]:
    """One ``(interval_id, start, end)`` per event interval and repetition (the pieces of an
    open-ended interval joined)."""
    joined: dict[tuple[int, int], tuple[int, datetime, datetime]] = {}
    for w in windows:
        key = (w.index, w.repeat)
        if key in joined:
            iid, start, end = joined[key]
            joined[key] = (iid, min(start, w.start), max(end, w.end))
        else:
            joined[key] = (w.interval_id, w.start, w.end)
    return sorted(joined.values(), key=lambda t: t[1])


def _value(
    payload_type: str, measured: float, baseline: float | None, hours: float, floor_kw: float
) -> float | None:
    if payload_type == "USAGE":
        return measured * hours
    if payload_type == "DEMAND":
        return measured
    if payload_type == "BASELINE":
        return baseline
    if payload_type == "DELTA_USAGE":
        return None if baseline is None else (measured - baseline) * hours
    return max(0.0, measured - floor_kw)


def _descriptor(wanted: dict[str, Any]) -> tuple[str, str, float, str]:
    payload_type = str(wanted["payloadType"])
    quantity, units, reading = REPORTABLE[payload_type]
    asked = str(wanted.get("units") or units).upper()
    scale = SCALE[quantity].get(asked)
    if scale is None:
        asked, scale = units, 1.0
    return payload_type, asked, scale, reading


def build_report(
    session: Session,
    *,
    vtn_event_id: str,
    descriptors: Sequence[dict[str, Any]],
    intervals: Sequence[tuple[int, datetime, datetime]],
    figures: Sequence[IntervalFigures],
    resource_name: str,
    client_name: str,
    settings: GridlinkSettings,
) -> dict[str, Any] | None:
    """The reportRequest body for the supported descriptors over ``intervals`` (one
    :class:`IntervalFigures` each); None when nothing is reportable (no supported payload
    type, or no measurement in any interval)."""
    wanted = [d for d in descriptors if d.get("payloadType") in REPORTABLE]
    if not wanted or not intervals:
        return None
    chosen = list({c[0]: c for c in (_descriptor(d) for d in wanted)}.values())
    floor_kw = (
        settings.facility_overhead_kw
        + sum(n.min_power_w for n in nodes_repository.list_all(session)) / 1000.0
    )
    report_intervals = []
    for (interval_id, start, end), figure in zip(intervals, figures, strict=True):
        if figure.measured_kw is None:
            continue
        hours = (end - start).total_seconds() / 3600.0
        payloads = []
        for payload_type, _units, scale, _reading in chosen:
            value = _value(payload_type, figure.measured_kw, figure.baseline_kw, hours, floor_kw)
            if value is not None:
                payloads.append({"type": payload_type, "values": [round(value * scale, 6)]})
        if payloads:
            period = {"start": start.isoformat(), "duration": _iso_duration(end - start)}
            report_intervals.append(
                {"id": interval_id, "intervalPeriod": period, "payloads": payloads}
            )
    if not report_intervals:
        return None
    return {
        "eventID": vtn_event_id,
        "clientName": client_name,
        "reportName": f"gridlink report for event {vtn_event_id}"[:128],
        "payloadDescriptors": [
            ReportPayloadDescriptor(
                payload_type=payload_type,
                reading_type=reading,
                units=units,
            ).model_dump(mode="json", by_alias=True, exclude_none=True)
            for payload_type, units, _scale, reading in chosen
        ],
        "resources": [{"resourceName": resource_name, "intervals": report_intervals}],
    }


def _iso_duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    whole = int(seconds)
    if whole == seconds:
        return f"PT{whole}S"
    return f"PT{seconds:.3f}S"
