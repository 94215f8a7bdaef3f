"""Reports to the VTN: for an event's reportDescriptors, one report per event once its last
interval has ended (``startInterval = -1``, the spec's default), from telemetry.

Values per event interval (units converted to what the descriptor asks where it is a unit of
the same quantity):

======================== ========== ============ ==========================================
payloadType               units      readingType  value
======================== ========== ============ ==========================================
USAGE                     KWH        DIRECT_READ  measured facility energy in the interval
DEMAND                    KW         MEAN         measured average facility power
BASELINE                  KW         ESTIMATED    the baseline (``BaselineSource``)
DELTA_USAGE               KWH        ESTIMATED    measured energy - baseline energy
LOAD_SHED_DELTA_AVAILABLE KW         ESTIMATED    measured power - the fleet's minimum power
======================== ========== ============ ==========================================

The baseline sits behind :class:`BaselineSource`; the default is the simplest one, the average
facility power before the event. The delivered-reduction figures of ``gridlink.reports`` can be
plugged in there.

Why the report body is built here and not with openadr3-client's ``NewReport``: its 3.1 report
model types ``payloadDescriptors`` as *event* payload descriptors (objectType
EVENT_PAYLOAD_DESCRIPTOR), while the spec requires REPORT_PAYLOAD_DESCRIPTOR with a readingType.
The pieces it models correctly (``ReportPayloadDescriptor``) are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from openadr3_client.oadr310.models.report.report_payload import ReportPayloadDescriptor
from sqlalchemy.orm import Session

from gridlink.nodes import repository as nodes_repository
from gridlink.openadr.intervals import Window
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import repository as telemetry_repository

__all__ = ["BaselineSource", "PreEventAverageBaseline", "build_report", "interval_windows"]

# payloadType -> (quantity, our units, readingType)
REPORTABLE = {
    "USAGE": ("energy", "KWH", "DIRECT_READ"),
    "DEMAND": ("power", "KW", "MEAN"),
    "BASELINE": ("power", "KW", "ESTIMATED"),
    "DELTA_USAGE": ("energy", "KWH", "ESTIMATED"),
    "LOAD_SHED_DELTA_AVAILABLE": ("power", "KW", "ESTIMATED"),
}
SCALE = {"power": {"KW": 1.0, "W": 1000.0, "MW": 0.001}, "energy": {"KWH": 1.0, "MWH": 0.001}}


class BaselineSource(Protocol):
    def baseline_kw(
        self, session: Session, *, event_start: datetime, start: datetime, end: datetime
    ) -> float | None:
        """The facility power (kW) there would have been over ``[start, end)`` without the
        event that started at ``event_start``; None when unknown."""
        ...


def measured_kw(
    session: Session, start: datetime, end: datetime, settings: GridlinkSettings
) -> float | None:
    """Average facility power over ``[start, end)`` from raw telemetry; None without samples."""
    stats = telemetry_repository.window_stats(
        session, since=start, until=end - timedelta(microseconds=1)
    )
    if not stats:
        return None
    return settings.facility_overhead_kw + sum(s.power_w_avg for s in stats) / 1000.0


@dataclass(frozen=True)
class PreEventAverageBaseline:
    """The average facility power over ``window_s`` before the event started."""

    settings: GridlinkSettings
    window_s: float

    def baseline_kw(
        self, session: Session, *, event_start: datetime, start: datetime, end: datetime
    ) -> float | None:
        before = event_start - timedelta(seconds=self.window_s)
        return measured_kw(session, before, event_start, self.settings)


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
    windows: Sequence[Window],
    resource_name: str,
    client_name: str,
    baseline: BaselineSource,
    settings: GridlinkSettings,
) -> dict[str, Any] | None:
    """The reportRequest body for the supported descriptors; None when nothing is reportable
    (no supported payload type, or no telemetry in any interval)."""
    wanted = [d for d in descriptors if d.get("payloadType") in REPORTABLE]
    if not wanted or not windows:
        return None
    chosen = [_descriptor(d) for d in wanted]
    event_start = min(w.start for w in windows)
    floor_kw = (
        settings.facility_overhead_kw
        + sum(n.min_power_w for n in nodes_repository.list_all(session)) / 1000.0
    )
    intervals = []
    for interval_id, start, end in interval_windows(windows):
        measured = measured_kw(session, start, end, settings)
        if measured is None:
            continue
        base = baseline.baseline_kw(session, event_start=event_start, start=start, end=end)
        hours = (end - start).total_seconds() / 3600.0
        payloads = []
        for payload_type, _units, scale, _reading in chosen:
            value = _value(payload_type, measured, base, hours, floor_kw)
            if value is not None:
                payloads.append({"type": payload_type, "values": [round(value * scale, 6)]})
        if payloads:
            period = {"start": start.isoformat(), "duration": _iso_duration(end - start)}
            intervals.append({"id": interval_id, "intervalPeriod": period, "payloads": payloads})
    if not intervals:
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
        "resources": [{"resourceName": resource_name, "intervals": intervals}],
    }


def _iso_duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    whole = int(seconds)
    if whole == seconds:
        return f"PT{whole}S"
    return f"PT{seconds:.3f}S"
