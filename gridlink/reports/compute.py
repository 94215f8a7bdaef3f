"""Build a report body from its inputs: measured power, four baselines, delivered, compliance,
per-node contributions and service cost. Pure: no ORM, no clock, no I/O.

Gaps are never filled. A node is *present* from its first to its last interval with samples;
inside that span an interval without samples is *missing* and one whose samples cover less than
``min_coverage`` of it (samples x sample period / interval) is *partial*. The facility's measured
power in an interval is the overhead plus the mean power of every node that reported in it; an
interval with a missing or partial node is flagged ``complete: false`` and counted, and its
figures stay in the totals, which also give the energy carried by incomplete intervals.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from gridlink.reports.baselines import contracted_kw, high_x_of_y, pre_event_average_kw
from gridlink.reports.inputs import BASELINES, NodeInterval, ReportInputs, Requested
from gridlink.reports.nodes import node_contributions, service_cost, stock_kw

SCHEMA = "gridlink.report/1"
GAP_POLICY = (
    "Missing telemetry is not filled: a node-interval without samples inside the node's "
    "presence span is counted as missing and the interval is flagged incomplete; measured "
    "power sums the nodes that reported. Partial node-intervals use the mean of their samples "
    "and are counted."
)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True, slots=True)
class Measured:
    kw: float | None
    model_kw: float | None
    reporting: int
    missing: int
    partial: int
    demand_fallbacks: int


def _spans(by_node: dict[int, dict[int, NodeInterval]]) -> dict[int, tuple[int, int]]:
    return {node: (min(cells), max(cells)) for node, cells in by_node.items() if cells}


def measure(inputs: ReportInputs) -> list[Measured]:
    """Facility power and the model counterfactual per interval, with completeness counts."""
    cfg = inputs.config
    by_node: dict[int, dict[int, NodeInterval]] = defaultdict(dict)
    for cell in inputs.node_intervals:
        if cell.samples > 0:
            by_node[cell.node_id][cell.index] = cell
    spans = _spans(by_node)
    curves = {n.node_id: n.stock_curve for n in inputs.nodes}
    result = []
    for i in range(inputs.interval_count):
        power_w = model_w = 0.0
        reporting = missing = partial = fallbacks = 0
        model_ok = True
        for node, (first, last) in spans.items():
            if not first <= i <= last:
                continue
            found = by_node[node].get(i)
            if found is None:
                missing += 1
                continue
            cell = found
            reporting += 1
            if cell.samples * cfg.sample_period_s < cfg.min_coverage * cfg.interval_s:
                partial += 1
            power_w += cell.power_w
            kw, fallback = stock_kw(curves.get(node, ()), cell)
            fallbacks += fallback
            if kw is None:
                model_ok = False
            else:
                model_w += kw * 1000.0
        has_data = reporting > 0
        result.append(
            Measured(
                kw=cfg.overhead_kw + power_w / 1000.0 if has_data else None,
                model_kw=cfg.overhead_kw + model_w / 1000.0 if has_data and model_ok else None,
                reporting=reporting,
                missing=missing,
                partial=partial,
                demand_fallbacks=fallbacks,
            )
        )
    return result


def requested_in(inputs: ReportInputs, index: int) -> tuple[str, float, float] | None:
    """``(kind, value, fraction)`` asked in interval ``index``: the kind in force longest there,
    its value time-weighted over the covered part, and the covered fraction of the interval."""
    start = inputs.interval_start(index)
    end = inputs.interval_start(index + 1)
    overlap: dict[str, list[tuple[float, float]]] = defaultdict(list)
    covered = 0.0
    for req in inputs.requested:
        seconds = (min(end, req.end) - max(start, req.start)).total_seconds()
        if seconds > 0:
            overlap[req.kind].append((seconds, req.value))
            covered += seconds
    if not overlap:
        return None
    kind = max(overlap, key=lambda k: (sum(s for s, _ in overlap[k]), k))
    seconds = sum(s for s, _ in overlap[kind])
    value = sum(s * v for s, v in overlap[kind]) / seconds
    return kind, value, min(1.0, covered / inputs.config.interval_s)


def limit_for(kind: str, value: float, baseline_kw: float | None) -> float | None:
    """The facility limit a request means against a baseline (None if it needs one it lacks)."""
    if kind == "limit_kw":
        return value
    if baseline_kw is None:
        return None
    if kind == "reduction_kw":
        return baseline_kw - value
    return baseline_kw * (1.0 - value / 100.0)


def baseline_series(inputs: ReportInputs, measured: list[Measured]) -> dict[str, Any]:
    """Each baseline's kW per event interval, and what describes how it was reached."""
    cfg = inputs.config
    first = inputs.event_start_index
    count = inputs.interval_count - first
    pre = pre_event_average_kw([m.kw for m in measured[:first]])
    hxy = high_x_of_y(
        inputs.comparable_days,
        intervals=count,
        x=cfg.hxy_x,
        y=cfg.hxy_y,
        event_day_adjustment_kw=inputs.event_day_adjustment_kw,
        adjustment_cap=cfg.hxy_adjustment_cap,
    )
    series: dict[str, list[float | None]] = {
        "contracted": list(contracted_kw(count, cfg.contracted_kw)),
        "pre_event": [pre] * count,
        "high_x_of_y": list(hxy.interval_kw),
        "model": [m.model_kw for m in measured[first:]],
    }
    sources: dict[str, int] = defaultdict(int)
    for node in inputs.nodes:
        sources[node.curve_source] += 1
    about = {
        "contracted": {"kw": cfg.contracted_kw},
        "pre_event": {
            "kw": _r(pre),
            "intervals_measured": sum(1 for m in measured[:first] if m.kw is not None),
            "intervals": first,
        },
        "high_x_of_y": {
            "x": cfg.hxy_x,
            "y": cfg.hxy_y,
            "considered_days": [d.isoformat() for d in hxy.considered],
            "selected_days": [d.isoformat() for d in hxy.selected],
            "adjustment_factor": _r(hxy.adjustment_factor, 6),
            "adjustment_capped": hxy.adjustment_capped,
            "adjustment_cap": cfg.hxy_adjustment_cap,
            "note": hxy.note,
        },
        "model": {
            "stock_curves": dict(sorted(sources.items())),
            "demand_fallback_node_intervals": sum(m.demand_fallbacks for m in measured[first:]),
        },
    }
    return {"series": series, "about": about}


def _interval_rows(
    inputs: ReportInputs, measured: list[Measured], series: dict[str, list[float | None]]
) -> list[dict[str, Any]]:
    cfg = inputs.config
    zone = ZoneInfo(cfg.timezone)
    rows = []
    for i, m in enumerate(measured):
        start = inputs.interval_start(i)
        phase = "event" if i >= inputs.event_start_index else "before"
        row: dict[str, Any] = {
            "index": i,
            "start": start.isoformat(),
            "start_local": start.astimezone(zone).isoformat(),
            "phase": phase,
            "measured_kw": _r(m.kw),
            "nodes_reporting": m.reporting,
            "nodes_missing": m.missing,
            "nodes_partial": m.partial,
            "complete": m.kw is not None and m.missing == 0 and m.partial == 0,
            "requested": None,
            "baseline_kw": {},
            "delivered_kw": {},
            "requested_limit_kw": {},
            "compliant": {},
        }
        if phase == "event":
            _fill_event_row(row, inputs, i, m, series)
        rows.append(row)
    return rows


def _fill_event_row(
    row: dict[str, Any],
    inputs: ReportInputs,
    i: int,
    m: Measured,
    series: dict[str, list[float | None]],
) -> None:
    req = requested_in(inputs, i)
    if req is not None:
        kind, value, fraction = req
        row["requested"] = {"kind": kind, "value": _r(value), "fraction": _r(fraction, 6)}
    tolerance = inputs.config.tolerance_frac
    for name in BASELINES:
        base = series[name][i - inputs.event_start_index]
        row["baseline_kw"][name] = _r(base)
        delivered = None if base is None or m.kw is None else base - m.kw
        row["delivered_kw"][name] = _r(delivered)
        limit = None if req is None else limit_for(req[0], req[1], base)
        row["requested_limit_kw"][name] = _r(limit)
        ok = None if limit is None or m.kw is None else m.kw <= limit * (1.0 + tolerance)
        row["compliant"][name] = ok


def _totals(inputs: ReportInputs, rows: list[dict[str, Any]]) -> dict[str, Any]:
    hours = inputs.config.interval_s / 3600.0
    event_rows = [r for r in rows if r["phase"] == "event"]
    totals: dict[str, Any] = {
        "event_intervals": len(event_rows),
        "requested_intervals": sum(1 for r in event_rows if r["requested"]),
        "incomplete_intervals": sum(1 for r in event_rows if not r["complete"]),
        "unmeasured_intervals": sum(1 for r in event_rows if r["measured_kw"] is None),
        "measured_kwh": _r(sum((r["measured_kw"] or 0.0) * hours for r in event_rows)),
        "delivered_kwh": {},
        "delivered_kwh_in_incomplete_intervals": {},
        "baseline_kwh": {},
        "compliance_share": {},
        "intervals_judged": {},
    }
    for name in BASELINES:
        kwh = incomplete_kwh = base_kwh = 0.0
        any_value = False
        judged = ok = 0
        for r in event_rows:
            weight = hours * (r["requested"]["fraction"] if r["requested"] else 1.0)
            delivered = r["delivered_kw"][name]
            if delivered is not None:
                any_value = True
                kwh += delivered * weight
                base_kwh += r["baseline_kw"][name] * weight
                if not r["complete"]:
                    incomplete_kwh += delivered * weight
            if r["compliant"][name] is not None:
                judged += 1
                ok += bool(r["compliant"][name])
        totals["delivered_kwh"][name] = _r(kwh) if any_value else None
        totals["delivered_kwh_in_incomplete_intervals"][name] = _r(incomplete_kwh)
        totals["baseline_kwh"][name] = _r(base_kwh) if any_value else None
        totals["compliance_share"][name] = _r(ok / judged, 6) if judged else None
        totals["intervals_judged"][name] = judged
    return totals


def build_report(inputs: ReportInputs) -> dict[str, Any]:
    """The report body (JSON-ready; no generation time, so regenerating gives the same body)."""
    cfg = inputs.config
    measured = measure(inputs)
    baselines = baseline_series(inputs, measured)
    rows = _interval_rows(inputs, measured, baselines["series"])
    return {
        "schema": SCHEMA,
        "subject": inputs.subject,
        "kind": inputs.kind,
        "event": inputs.event,
        "overlapping_events": list(inputs.overlapping_events),
        "window": {
            "start": inputs.window_start.isoformat(),
            "end": inputs.window_end.isoformat(),
            "pre_event_start": inputs.grid_start.isoformat(),
            "start_local": inputs.window_start.astimezone(ZoneInfo(cfg.timezone)).isoformat(),
            "end_local": inputs.window_end.astimezone(ZoneInfo(cfg.timezone)).isoformat(),
            "timezone": cfg.timezone,
            "interval_s": cfg.interval_s,
        },
        "config": {
            "sample_period_s": cfg.sample_period_s,
            "min_coverage": cfg.min_coverage,
            "tolerance_frac": cfg.tolerance_frac,
            "overhead_kw": cfg.overhead_kw,
        },
        "gap_policy": GAP_POLICY,
        "baselines": baselines["about"],
        "intervals": rows,
        "totals": _totals(inputs, rows),
        "nodes": node_contributions(inputs),
        "service": service_cost(inputs),
    }


def delivered_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The delivered figures per event interval: what the OpenADR reporter posts back."""
    return [
        {
            "start": r["start"],
            "interval_s": body["window"]["interval_s"],
            "measured_kw": r["measured_kw"],
            "requested": r["requested"],
            "baseline_kw": dict(r["baseline_kw"]),
            "delivered_kw": dict(r["delivered_kw"]),
            "complete": r["complete"],
        }
        for r in body["intervals"]
        if r["phase"] == "event"
    ]


__all__ = ["GAP_POLICY", "SCHEMA", "Requested", "build_report", "delivered_rows", "measure"]
