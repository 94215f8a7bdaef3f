"""Per-node contributions and the service cost of an event. Pure, like :mod:`.compute`.

Energy is each interval's mean power times the interval; tokens are the mean throughput (or
demand) times the interval. A QoS-violated window is a sample the node flagged ``qos_violation``
(each sample carries the verdict of the QoS window it closes).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gridlink.reports.baselines import stock_power_w
from gridlink.reports.inputs import NodeInterval, ReportInputs


def stock_kw(
    curve: tuple[tuple[float, float], ...], cell: NodeInterval
) -> tuple[float | None, int]:
    """The node's stock power (kW) at the demand it reported in ``cell``; the second value is
    1 when the demand was missing and the served throughput stood in for it."""
    if not curve:
        return None, 0
    fallback = cell.demand_tok_s is None
    demand = cell.throughput_tok_s if fallback else float(cell.demand_tok_s or 0.0)
    return stock_power_w(curve, demand) / 1000.0, int(fallback)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def node_contributions(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Each node's share of the delivered energy against the model counterfactual and against its
    own pre-event average, with its presence, coverage and tokens."""
    cfg = inputs.config
    hours = cfg.interval_s / 3600.0
    first = inputs.event_start_index
    cells: dict[int, list[NodeInterval]] = defaultdict(list)
    for cell in inputs.node_intervals:
        if cell.samples > 0:
            cells[cell.node_id].append(cell)
    out = []
    for profile in sorted(inputs.nodes, key=lambda n: n.node_id):
        mine = sorted(cells.get(profile.node_id, []), key=lambda c: c.index)
        if not mine:
            continue
        before = [c for c in mine if c.index < first]
        during = [c for c in mine if c.index >= first]
        lo, hi = mine[0].index, mine[-1].index
        span_event = range(max(lo, first), hi + 1)
        pre_kw = sum(c.power_w for c in before) / len(before) / 1000.0 if before else None
        measured_kwh = sum(c.power_w for c in during) / 1000.0 * hours
        model = [stock_kw(profile.stock_curve, c)[0] for c in during]
        model_kwh = None if any(m is None for m in model) else sum(m or 0.0 for m in model) * hours
        coverage = [min(1.0, c.samples * cfg.sample_period_s / cfg.interval_s) for c in during]
        out.append(
            {
                "node_id": profile.node_id,
                "name": profile.name,
                "curve_source": profile.curve_source,
                "present_from": inputs.interval_start(lo).isoformat(),
                "present_to": inputs.interval_start(hi + 1).isoformat(),
                "event_intervals_present": len(span_event),
                "event_intervals_missing": len(span_event) - len(during),
                "coverage": _r(sum(coverage) / len(span_event), 6) if len(span_event) else None,
                "measured_kwh": _r(measured_kwh),
                "model_kwh": _r(model_kwh),
                "delivered_kwh_model": _r(None if model_kwh is None else model_kwh - measured_kwh),
                "pre_event_kw": _r(pre_kw),
                "delivered_kwh_pre_event": _r(
                    None
                    if pre_kw is None or not during
                    else pre_kw * len(during) * hours - measured_kwh
                ),
                "tokens_served": _r(sum(c.throughput_tok_s for c in during) * cfg.interval_s, 1),
                "tokens_demanded": _r(_demanded(during, cfg.interval_s), 1),
                "qos_violated_windows": sum(c.qos_violations for c in during),
            }
        )
    return out


def _demanded(cells: list[NodeInterval], interval_s: int) -> float | None:
    with_demand = [c.demand_tok_s for c in cells if c.demand_tok_s is not None]
    return sum(with_demand) * interval_s if with_demand else None


def _phase(cells: list[NodeInterval], seconds: float, interval_s: int) -> dict[str, Any]:
    demanded = [c for c in cells if c.demand_tok_s is not None]
    served = sum(c.throughput_tok_s for c in cells) * interval_s
    asked = sum(c.demand_tok_s or 0.0 for c in demanded) * interval_s
    served_of_asked = sum(c.throughput_tok_s for c in demanded) * interval_s
    samples = sum(c.samples for c in cells)
    violations = sum(c.qos_violations for c in cells)
    return {
        "duration_s": seconds,
        "tokens_served": _r(served, 1),
        "tokens_served_per_s": _r(served / seconds if seconds else None),
        "tokens_demanded": _r(asked, 1) if demanded else None,
        "served_share": _r(served_of_asked / asked, 6) if demanded and asked > 0 else None,
        "samples": samples,
        "qos_violated_windows": violations,
        "qos_violated_share": _r(violations / samples, 6) if samples else None,
    }


def service_cost(inputs: ReportInputs) -> dict[str, Any]:
    """Tokens served against tokens demanded and QoS-violated windows, before vs during."""
    cfg = inputs.config
    first = inputs.event_start_index
    before = [c for c in inputs.node_intervals if c.samples > 0 and c.index < first]
    during = [c for c in inputs.node_intervals if c.samples > 0 and c.index >= first]
    return {
        "before": _phase(before, first * cfg.interval_s, cfg.interval_s),
        "during": _phase(during, (inputs.interval_count - first) * cfg.interval_s, cfg.interval_s),
    }
