"""OpenADR 3.1 events -> gridlink event specs, pure (no I/O, no clock: ``received_at`` and the
horizon are passed in). docs/openadr.md has the mapping table.

An event is parsed with openadr3-client's 3.1 models (``openadr3_client.oadr310``) after two
normalisations the models do not make: a date-only ``0001-01-01`` start, and an intervalPeriod
without ``duration`` (optional in the spec, default ``PT0S``). Payload values are checked against
the standard's payload enumerations. Anything wrong rejects the event with a reason
(:class:`EventRejected`); payload types the gateway does not act on are listed, not fatal.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from openadr3_client.oadr310.models.event.event import ExistingEvent
from pydantic import ValidationError

from gridlink.curtailments.ingest import IntervalSpec
from gridlink.errors import GridlinkError
from gridlink.models.event import SignalKind
from gridlink.openadr.intervals import RawPeriod, TimingError, Window, event_windows
from gridlink.openadr.schema import payload_errors

__all__ = ["EventRejected", "MappedEvent", "MappingContext", "PriceInterval", "map_event"]

LIMIT_TYPES = ("IMPORT_CAPACITY_LIMIT", "DISPATCH_SETPOINT")
SUPPORTED_TYPES = (
    *LIMIT_TYPES,
    "DISPATCH_SETPOINT_RELATIVE",
    "SIMPLE",
    "PRICE",
    "ALERT_GRID_EMERGENCY",
)
KW_PER_UNIT = {"KW": 1.0, "W": 0.001, "MW": 1000.0}
PRIORITY_SCALE = 1000  # planner priority = PRIORITY_SCALE - OpenADR priority (lower = higher)


class EventRejected(GridlinkError):
    """The VTN's event is invalid for this VEN; ``reason`` is logged and stored."""

    def __init__(self, vtn_event_id: str, reason: str) -> None:
        super().__init__(f"event {vtn_event_id}: {reason}")
        self.vtn_event_id = vtn_event_id
        self.reason = reason


@dataclass(frozen=True)
class MappingContext:
    received_at: datetime
    horizon_end: datetime
    targets: frozenset[str]
    simple_reductions_pct: tuple[float, float, float, float]
    ven_name: str
    max_piece_s: float
    # targets naming the whole facility (VEN name, facility resource, configured targets); a
    # target only in ``targets`` names one node's resource
    facility_targets: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PriceInterval:
    start: datetime
    duration_s: float
    price: float
    currency: str | None
    unit: str | None


@dataclass(frozen=True)
class MappedEvent:
    vtn_event_id: str
    program_id: str
    name: str
    priority: int
    targeted: bool
    intervals: tuple[IntervalSpec, ...] = ()
    prices: tuple[PriceInterval, ...] = ()
    ignored_payload_types: tuple[str, ...] = ()
    windows: tuple[Window, ...] = ()
    report_descriptors: tuple[dict[str, Any], ...] = field(default=())
    # node (resource) names the limits apply to, each alone; empty: the whole facility
    nodes: tuple[str, ...] = ()


def _periods(event: dict[str, Any]) -> list[dict[str, Any]]:
    found = [event.get("intervalPeriod")]
    found += [i.get("intervalPeriod") for i in event.get("intervals") or [] if isinstance(i, dict)]
    return [p for p in found if isinstance(p, dict)]


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with a date-only '0001-01-01' made a full instant and null period parts dropped."""
    event = copy.deepcopy(raw)
    for period in _periods(event):
        start = period.get("start")
        if isinstance(start, str) and start.startswith("0001-01-01"):
            period["start"] = "0001-01-01T00:00:00Z"
        for key in ("start", "duration", "randomizeStart"):
            if period.get(key) is None:
                period.pop(key, None)
    return event


def _parse(given: dict[str, Any]) -> ExistingEvent:
    # The 3.1 model requires intervalPeriod.start and .duration; the spec does not (intervals
    # may carry the start; the duration defaults to PT0S). Fill them for the model only:
    # ``_period_of`` reads what was given.
    model_input = copy.deepcopy(given)
    for period in _periods(model_input):
        period.setdefault("start", "0001-01-01T00:00:00Z")
        period.setdefault("duration", "PT0S")
    try:
        return ExistingEvent.model_validate(model_input)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        raise EventRejected(str(given.get("id", "?")), f"{where}: {first['msg']}") from err


def _period_of(given: dict[str, Any] | None, parsed: Any) -> RawPeriod | None:
    """The period as the VTN gave it (parts it left out are None)."""
    if given is None or parsed is None:
        return None
    return RawPeriod(
        start=parsed.start if "start" in given else None,
        duration=parsed.duration if given.get("duration") not in (None, "PT0S") else None,
        randomize_start=parsed.randomize_start,
    )


def _signals(
    payload_type: str, value: Any, descriptor: dict[str, Any], ctx: MappingContext
) -> list[tuple[SignalKind, float]]:
    units = (descriptor.get("units") or "KW").upper()
    if payload_type in LIMIT_TYPES:
        if units not in KW_PER_UNIT:
            raise ValueError(f"{payload_type} in units {units!r}; supported: KW, W, MW")
        limit_kw = float(value) * KW_PER_UNIT[units]
        if limit_kw <= 0:
            raise ValueError(f"{payload_type} of {value} {units}: a limit must be above 0")
        return [(SignalKind.LIMIT_KW, limit_kw)]
    if payload_type == "DISPATCH_SETPOINT_RELATIVE":
        if units == "PERCENT":  # a fraction in [0, 1] per the units enumeration
            pct = float(value) * 100.0
            return [(SignalKind.REDUCTION_PCT, min(pct, 100.0))] if pct > 0 else []
        if units not in KW_PER_UNIT:
            raise ValueError(f"{payload_type} in units {units!r}; supported: KW, W, MW, PERCENT")
        reduction_kw = float(value) * KW_PER_UNIT[units]
        return [(SignalKind.REDUCTION_KW, reduction_kw)] if reduction_kw > 0 else []
    if payload_type == "SIMPLE":
        pct = ctx.simple_reductions_pct[int(value)]
        return [(SignalKind.REDUCTION_PCT, pct)] if pct > 0 else []
    if payload_type == "ALERT_GRID_EMERGENCY":
        return [(SignalKind.REDUCTION_PCT, max(ctx.simple_reductions_pct))]
    return []


def _descriptors(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        d["payloadType"]: d
        for d in raw.get("payloadDescriptors") or []
        if isinstance(d, dict) and "payloadType" in d
    }


def _targeted(targets: tuple[str, ...] | None, ctx: MappingContext) -> bool:
    return not targets or any(t in ctx.targets for t in targets)


def _node_scope(targets: tuple[str, ...] | None, ctx: MappingContext) -> tuple[str, ...]:
    """The nodes a targeted event limits: those its targets name, unless a target names the
    whole facility (or there are none)."""
    if not targets or any(t in ctx.facility_targets for t in targets):
        return ()
    return tuple(sorted({t for t in targets if t in ctx.targets}))


def map_event(raw: dict[str, Any], ctx: MappingContext) -> MappedEvent:
    """Map one VTN event (as JSON) to what the gateway stores; raises :class:`EventRejected`."""
    normalised = _normalise(raw)
    parsed = _parse(normalised)
    event_id = parsed.id
    name = f"openadr {parsed.event_name or event_id} (program {parsed.program_id})"[:256]
    priority = 0 if parsed.priority is None else PRIORITY_SCALE - min(parsed.priority, 999)
    base = {
        "vtn_event_id": event_id,
        "program_id": parsed.program_id,
        "name": name,
        "priority": priority,
        "report_descriptors": tuple(raw.get("reportDescriptors") or ()),
    }
    if not _targeted(parsed.targets, ctx):
        return MappedEvent(targeted=False, **base)  # type: ignore[arg-type]
    raw_intervals = normalised.get("intervals") or []
    intervals = parsed.intervals or ()
    try:
        windows = event_windows(
            _period_of(normalised.get("intervalPeriod"), parsed.interval_period),
            [
                (iv.id, _period_of(r.get("intervalPeriod"), iv.interval_period))
                for iv, r in zip(intervals, raw_intervals, strict=True)
            ],
            event_duration=parsed.duration,
            received_at=ctx.received_at,
            horizon_end=ctx.horizon_end,
            seed=f"{ctx.ven_name}:{event_id}",
            max_piece_s=ctx.max_piece_s,
        )
    except TimingError as err:
        raise EventRejected(event_id, str(err)) from err
    descriptors = _descriptors(raw)
    ignored: set[str] = set()
    specs: list[IntervalSpec] = []
    prices: list[PriceInterval] = []
    for window in windows:
        for payload in raw_intervals[window.index].get("payloads") or []:
            kind, values = str(payload["type"]), list(payload["values"])
            if kind not in SUPPORTED_TYPES:
                ignored.add(kind)
                continue
            errors = payload_errors("event", kind, values)
            if errors:
                raise EventRejected(event_id, f"interval {window.interval_id}: {errors[0]}")
            duration_s = (window.end - window.start).total_seconds()
            descriptor = descriptors.get(kind, {})
            if kind == "PRICE":
                prices.append(
                    PriceInterval(
                        window.start,
                        duration_s,
                        float(values[0]),
                        descriptor.get("currency"),
                        descriptor.get("units"),
                    )
                )
                continue
            try:
                signals = _signals(kind, values[0], descriptor, ctx)
            except ValueError as err:
                raise EventRejected(event_id, f"interval {window.interval_id}: {err}") from err
            specs.extend(IntervalSpec(window.start, duration_s, k, v) for k, v in signals)
    return MappedEvent(
        targeted=True,
        intervals=tuple(specs),
        prices=tuple(prices),
        ignored_payload_types=tuple(sorted(ignored)),
        windows=tuple(w for w in windows),
        nodes=_node_scope(parsed.targets, ctx) if ctx.facility_targets else (),
        **base,  # type: ignore[arg-type]
    )
