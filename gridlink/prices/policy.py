"""The price policy, pure: an energy price -> a facility limit (or none).

* ``thresholds``: the highest threshold the price is above gives its limit (kW) or reduction (%).
* ``economic``: run each node where the marginal value of its throughput equals the energy
  price. With ``v`` the value of one served token and ``c`` the price of one joule, a node at
  power ``P`` earns ``v * T(P) - c * P`` per second; on the concave hull of its
  power-to-throughput curve the best ``P`` is the end of the last segment whose slope (tokens
  per joule) is at least ``c / v``. The facility limit is the overhead plus the nodes' powers;
  a limit at or above ``facility_max_kw`` constrains nothing (None). A node without a curve
  cannot be valued and is left at its maximum.

Prices are compared per kWh in the configured currency; :func:`price_per_kwh` converts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from gridlink.core.curves import upper_concave_hull
from gridlink.errors import InvalidInputError
from gridlink.models.event import SignalKind

__all__ = [
    "Decision",
    "NodeCurve",
    "Threshold",
    "economic_decision",
    "economic_power_w",
    "price_per_kwh",
    "threshold_decision",
]

J_PER_KWH = 3.6e6
KWH_PER_UNIT = {"KWH": 1.0, "MWH": 1000.0, "WH": 0.001}


@dataclass(frozen=True)
class Threshold:
    above: float
    kind: SignalKind
    value: float


@dataclass(frozen=True)
class NodeCurve:
    """A node's power range (W) and its power-to-throughput points ``(power_w, tok_s)``."""

    min_w: float
    max_w: float
    curve: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Decision:
    kind: SignalKind
    value: float
    rule: str


def price_per_kwh(price: float, unit: str | None) -> float:
    """``price`` per ``unit`` of energy (KWH, MWH, WH; default KWH) -> price per kWh."""
    key = (unit or "KWH").upper().replace(" ", "")
    if key not in KWH_PER_UNIT:
        raise InvalidInputError("unit", f"must be one of {', '.join(KWH_PER_UNIT)}, got {unit!r}")
    if not math.isfinite(price):
        raise InvalidInputError("price", f"must be a finite number, got {price}")
    return price / KWH_PER_UNIT[key]


def threshold_decision(price_kwh: float, thresholds: Sequence[Threshold]) -> Decision | None:
    """The highest threshold strictly below the price, or None."""
    passed = [t for t in thresholds if price_kwh > t.above]
    if not passed:
        return None
    chosen = max(passed, key=lambda t: (t.above, t.kind is SignalKind.REDUCTION_PCT, -t.value))
    unit = "kW" if chosen.kind is SignalKind.LIMIT_KW else "%"
    verb = "limit" if chosen.kind is SignalKind.LIMIT_KW else "reduce"
    return Decision(
        chosen.kind,
        chosen.value,
        f"threshold: price {price_kwh:g}/kWh > {chosen.above:g} -> {verb} {chosen.value:g} {unit}",
    )


def economic_power_w(node: NodeCurve, price_kwh: float, value_per_tok: float) -> float:
    """The power (W) at which the node's marginal throughput value meets the energy price."""
    points = [(p, t) for p, t in node.curve if node.min_w <= p <= node.max_w]
    if len(points) < 2:
        return node.max_w
    if value_per_tok <= 0:
        return node.min_w
    if price_kwh <= 0:
        return node.max_w
    needed_tok_per_j = (price_kwh / J_PER_KWH) / value_per_tok
    hull = upper_concave_hull(points)
    power = hull[0][0]
    for (p0, t0), (p1, t1) in pairwise(hull):
        if (t1 - t0) / (p1 - p0) < needed_tok_per_j:
            break
        power = p1
    return max(node.min_w, min(node.max_w, power))


def economic_decision(
    price_kwh: float,
    nodes: Sequence[NodeCurve],
    *,
    value_per_mtok: float,
    overhead_kw: float,
    facility_max_kw: float,
) -> Decision | None:
    """The facility limit the economic policy asks for at ``price_kwh``, or None."""
    if not nodes:
        return None
    value_per_tok = value_per_mtok / 1e6
    gpu_w = sum(economic_power_w(n, price_kwh, value_per_tok) for n in nodes)
    limit_kw = round(overhead_kw + gpu_w / 1000.0, 3)
    if limit_kw >= facility_max_kw or limit_kw <= 0:
        return None
    return Decision(
        SignalKind.LIMIT_KW,
        limit_kw,
        f"economic: price {price_kwh:g}/kWh vs {value_per_mtok:g}/Mtok -> limit {limit_kw:g} kW",
    )
