"""Fleet allocator: split a GPU power budget among nodes.

Rules, in the order they apply (``docs/gateway-core.md`` has a worked example):

1. **Bounds.** A node gets between ``min_w`` and its cap, where the cap is ``max_w``, or
   ``clamp(demand_w, min_w, max_w)`` when telemetry reports a demand: power a node cannot use
   goes to the others. A per-node limit (``limit_w``, e.g. an OpenADR event targeted at the
   node) lowers the cap further, never below ``min_w``.
2. **Infeasible budget.** If ``budget_w`` is below the sum of minimums, every node gets exactly
   its minimum, ``feasible`` is False and ``shortfall_kw = (sum of minimums - budget_w) / 1000``.
3. **Tiers in order.** Tier 0 (protected) is served first, then 1, 2, ... A tier's nodes are all
   raised to their caps before any node of the next tier gets anything above its minimum. At
   most one tier is partially served; later tiers stay at their minimums.
4. **Water-filling inside the partially served tier.** Each node's curve (its upper concave hull;
   see ``gridlink.core.curves``) is cut into linear segments, clipped at the node's cap. All the
   tier's segments are sorted by slope (marginal tokens per joule), steepest first, and taken
   whole while the budget lasts. The segments at the slope where the budget runs out (the water
   level) share what is left in proportion to their widths, so identical nodes get identical
   allocations. This equalises marginal throughput per watt: no transfer between two nodes of the
   tier can raise the total throughput.
5. **Leftover.** Budget that no node can use (every node at its cap) is reported as
   ``unallocated_w``; it is never forced on a node.

A node without a curve is linear from ``(min_w, 0)`` with slope ``default_slope_tok_per_j``
(1 token per joule unless given). The sum of allocations (``math.fsum``) never exceeds
``budget_w`` in the feasible case. Nodes are processed in ``node_id`` order, so the result does
not depend on the input order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from gridlink.core.curves import Curve
from gridlink.core.hull import HullSegments, check_curves, flatten_curves, hull_segments
from gridlink.errors import AllocationError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
LimitedBy = Literal["max", "demand", "limit", "budget", "infeasible"]

__all__ = [
    "Allocation",
    "AllocationResult",
    "Fleet",
    "NodeSpec",
    "allocate",
    "allocate_fleet",
    "prepare_fleet",
]


def _number(value: object, field: str, node_id: object, *, minimum: float = 0.0) -> float:
    if type(value) is float and value >= minimum and math.isfinite(value):
        return value  # the common case, without the slower ABC checks below
    if isinstance(value, bool) or not isinstance(value, Real):
        raise AllocationError(f"{field} of node {node_id} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise AllocationError(
            f"{field} of node {node_id} must be a finite number >= {minimum:g}, got {value!r}"
        )
    return number


def _is_int(value: object) -> bool:
    return type(value) is int or (not isinstance(value, bool) and isinstance(value, Integral))


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What the allocator knows about a node.

    ``curve``: ``(power_w, throughput_tok_s)`` points with strictly increasing power, from exactly
    ``min_w`` to exactly ``max_w`` (``curves.fit_to_range`` adapts a profile), non-decreasing
    throughput; empty means "unknown, linear". Checked by ``allocate`` (vectorised over the fleet).
    """

    node_id: int
    min_w: float
    max_w: float
    tier: int
    curve: Curve = ()
    demand_w: float | None = None
    limit_w: float | None = None  # a per-node maximum (W) from a node-targeted event

    def __post_init__(self) -> None:
        if not _is_int(self.node_id):
            raise AllocationError(f"node_id must be an int, got {self.node_id!r}")
        min_w = _number(self.min_w, "min_w", self.node_id)
        max_w = _number(self.max_w, "max_w", self.node_id, minimum=min_w)
        if not _is_int(self.tier) or self.tier < 0:
            raise AllocationError(f"tier of node {self.node_id} must be an int >= 0")
        if type(self.node_id) is not int or type(self.tier) is not int:
            object.__setattr__(self, "node_id", int(self.node_id))
            object.__setattr__(self, "tier", int(self.tier))
        object.__setattr__(self, "min_w", min_w)
        object.__setattr__(self, "max_w", max_w)
        object.__setattr__(self, "curve", () if self.curve is None else tuple(self.curve))
        if self.demand_w is not None:
            object.__setattr__(self, "demand_w", _number(self.demand_w, "demand_w", self.node_id))
        if self.limit_w is not None:
            object.__setattr__(self, "limit_w", _number(self.limit_w, "limit_w", self.node_id))


@dataclass(frozen=True, slots=True)
class Allocation:
    """One node's share, with its cap and what stopped it from getting more."""

    node_id: int
    power_w: float
    cap_w: float
    limited_by: LimitedBy


@dataclass(frozen=True, slots=True)
class AllocationResult:
    """The split of a budget; every dict is keyed and ordered by node_id.

    ``allocations``: watts per node. ``feasible``: False when the budget is below the sum of
    minimums (then every node is at its minimum and ``shortfall_kw`` says by how much).
    ``total_w``: ``math.fsum`` of the allocations. ``unallocated_w``: budget no node could use.
    ``caps_w``: the most each node could take (max_w, or its demand within [min_w, max_w],
    lowered to its limit_w). ``limited_by``: "max", "demand" or "limit" for a node at its cap,
    "budget" for one below it,
    "infeasible" when the budget did not cover the minimums.
    """

    allocations: dict[int, float]
    feasible: bool
    shortfall_kw: float
    total_w: float
    unallocated_w: float
    caps_w: dict[int, float]
    limited_by: dict[int, LimitedBy]
    # Marginal tokens per joule where the budget ran out (None when no tier was partly served).
    water_level_tok_per_j: float | None

    def details(self) -> list[Allocation]:
        """Per-node records, built on demand (the fleet can be large)."""
        return [
            Allocation(node_id, power_w, self.caps_w[node_id], self.limited_by[node_id])
            for node_id, power_w in self.allocations.items()
        ]


def _water_fill(
    budget_w: float, segments: HullSegments, width_w: FloatArray
) -> tuple[FloatArray, float | None]:
    """Watts taken from each segment, steepest first; ties at the water level share pro rata."""
    # Segments arrive in (node_id, power) order, so a stable sort on slope alone breaks ties
    # by node_id and then by position along the curve.
    order = np.argsort(-segments.slope, kind="stable")
    slope = segments.slope[order]
    width = width_w[order]
    cumulative = np.cumsum(width)
    cut = int(np.searchsorted(cumulative, budget_w, side="right"))
    taken_sorted = width.copy()
    level: float | None = None
    if cut < width.size:
        level = float(slope[cut])
        group_start = int(np.searchsorted(-slope, -level, side="left"))
        group_end = int(np.searchsorted(-slope, -level, side="right"))
        before = float(cumulative[group_start - 1]) if group_start else 0.0
        group_w = float(width[group_start:group_end].sum())
        share = min(1.0, max(0.0, budget_w - before) / group_w) if group_w > 0 else 0.0
        taken_sorted[group_start:group_end] *= share
        taken_sorted[group_end:] = 0.0
    taken = np.empty_like(taken_sorted)
    taken[order] = taken_sorted
    return taken, level


def _trim_to_budget(alloc: FloatArray, min_w: FloatArray, budget_w: float) -> None:
    """Remove float round-off so the exactly rounded sum never exceeds the budget."""
    for _ in range(64):
        excess = math.fsum(alloc.tolist()) - budget_w
        if excess <= 0:
            return
        i = int(np.argmax(alloc - min_w))
        reduced = max(float(min_w[i]), float(alloc[i]) - excess)
        if reduced == alloc[i]:
            reduced = max(float(min_w[i]), float(np.nextafter(alloc[i], -np.inf)))
        alloc[i] = reduced
    raise AssertionError("allocation could not be trimmed to the budget")  # pragma: no cover


def _check_budget(budget_w: object) -> float:
    if isinstance(budget_w, bool) or not isinstance(budget_w, Real):
        raise AllocationError(f"budget_w must be a number, got {budget_w!r}")
    budget = float(budget_w)
    if not math.isfinite(budget) or budget < 0:
        raise AllocationError(f"budget_w must be a finite number >= 0, got {budget_w!r}")
    return budget


@dataclass(frozen=True, slots=True)
class Fleet:
    """Nodes checked and turned into arrays once (node_id order), with their hull segments:
    what every budget's split starts from. Build with :func:`prepare_fleet`."""

    ids: list[int]
    min_w: FloatArray
    max_w: FloatArray
    cap_w: FloatArray
    has_demand: npt.NDArray[np.bool_]
    has_limit: npt.NDArray[np.bool_]
    sum_min_w: float
    segments: HullSegments
    usable_w: FloatArray
    tier_rank: IntArray
    headroom_w: FloatArray


def prepare_fleet(nodes: Sequence[NodeSpec], *, default_slope_tok_per_j: float = 1.0) -> Fleet:
    """Check ``nodes`` and prepare them for :func:`allocate_fleet`."""
    if not math.isfinite(default_slope_tok_per_j) or default_slope_tok_per_j < 0:
        raise AllocationError("default_slope_tok_per_j must be a finite number >= 0")
    for node in nodes:
        if not isinstance(node, NodeSpec):
            raise AllocationError(f"nodes must hold NodeSpec, got {type(node).__name__}")
    count = len(nodes)
    ids = np.fromiter((n.node_id for n in nodes), dtype=np.int64, count=count)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if count > 1 and bool((ids[1:] == ids[:-1]).any()):
        duplicate = int(ids[1:][ids[1:] == ids[:-1]][0])
        raise AllocationError(f"nodes: duplicate node_id {duplicate}")
    ordered = [nodes[i] for i in order.tolist()]
    min_w = np.fromiter((n.min_w for n in ordered), dtype=np.float64, count=count)
    max_w = np.fromiter((n.max_w for n in ordered), dtype=np.float64, count=count)
    tiers = np.fromiter((n.tier for n in ordered), dtype=np.int64, count=count)
    demand = np.fromiter(
        (math.nan if n.demand_w is None else n.demand_w for n in ordered),
        dtype=np.float64,
        count=count,
    )
    has_demand = ~np.isnan(demand)
    cap_w = np.where(has_demand, np.clip(np.nan_to_num(demand), min_w, max_w), max_w)
    limit = np.fromiter(
        (math.inf if n.limit_w is None else n.limit_w for n in ordered),
        dtype=np.float64,
        count=count,
    )
    has_limit = limit < cap_w
    cap_w = np.maximum(np.minimum(cap_w, limit), min_w)
    counts, points = flatten_curves(ordered, default_slope_tok_per_j)
    owner = np.repeat(np.arange(count, dtype=np.int64), counts)
    check_curves(ordered, min_w, max_w, counts, points, owner)
    segments = hull_segments(owner, points)
    usable_w = np.clip(
        np.minimum(segments.start_w + segments.width_w, cap_w[segments.node]) - segments.start_w,
        0.0,
        None,
    )
    tier_values, tier_rank = np.unique(tiers, return_inverse=True)
    headroom_w = np.bincount(tier_rank, weights=cap_w - min_w, minlength=tier_values.size)
    return Fleet(
        ids=ids.tolist(),
        min_w=min_w,
        max_w=max_w,
        cap_w=cap_w,
        has_demand=has_demand,
        has_limit=has_limit,
        sum_min_w=math.fsum(min_w.tolist()),
        segments=segments,
        usable_w=usable_w,
        tier_rank=tier_rank,
        headroom_w=headroom_w,
    )


def allocate(
    budget_w: float, nodes: Sequence[NodeSpec], *, default_slope_tok_per_j: float = 1.0
) -> AllocationResult:
    """Split ``budget_w`` among ``nodes`` (rules in the module docstring)."""
    budget = _check_budget(budget_w)
    fleet = prepare_fleet(nodes, default_slope_tok_per_j=default_slope_tok_per_j)
    return allocate_fleet(budget, fleet)


def _fill_tiers(budget_w: float, fleet: Fleet) -> tuple[FloatArray, float | None]:
    """Tiers in order, water-filling the one the budget runs out in (rules 3 and 4)."""
    segments, min_w, cap_w = fleet.segments, fleet.min_w, fleet.cap_w
    alloc = min_w.copy()
    remaining_w = budget_w - fleet.sum_min_w
    level: float | None = None
    for rank in range(fleet.headroom_w.size):
        if remaining_w <= 0:
            break
        members = fleet.tier_rank == rank
        if remaining_w >= fleet.headroom_w[rank]:
            alloc[members] = cap_w[members]
            remaining_w -= float(fleet.headroom_w[rank])
            continue
        in_tier = (fleet.tier_rank[segments.node] == rank) & (fleet.usable_w > 0)
        tier_segments = HullSegments(
            segments.node[in_tier],
            segments.start_w[in_tier],
            segments.width_w[in_tier],
            segments.slope[in_tier],
        )
        taken, level = _water_fill(remaining_w, tier_segments, fleet.usable_w[in_tier])
        alloc += np.bincount(tier_segments.node, weights=taken, minlength=len(fleet.ids))
        break
    np.clip(alloc, min_w, cap_w, out=alloc)
    _trim_to_budget(alloc, min_w, budget_w)
    return alloc, level


def allocate_fleet(budget_w: float, fleet: Fleet) -> AllocationResult:
    """Split ``budget_w`` among a prepared fleet: many budgets, one preparation."""
    budget_w = _check_budget(budget_w)
    id_list, min_w, cap_w = fleet.ids, fleet.min_w, fleet.cap_w
    if budget_w < fleet.sum_min_w:
        return AllocationResult(
            allocations=dict(zip(id_list, min_w.tolist(), strict=True)),
            feasible=False,
            shortfall_kw=(fleet.sum_min_w - budget_w) / 1000.0,
            total_w=fleet.sum_min_w,
            unallocated_w=0.0,
            caps_w=dict(zip(id_list, cap_w.tolist(), strict=True)),
            limited_by=dict.fromkeys(id_list, "infeasible"),
            water_level_tok_per_j=None,
        )
    alloc, level = _fill_tiers(budget_w, fleet)
    total_w = math.fsum(alloc.tolist())
    at_cap = alloc >= cap_w
    limited = np.where(
        at_cap & (cap_w >= fleet.max_w),
        "max",
        np.where(
            at_cap & fleet.has_limit,
            "limit",
            np.where(at_cap & fleet.has_demand, "demand", "budget"),
        ),
    )
    return AllocationResult(
        allocations=dict(zip(id_list, alloc.tolist(), strict=True)),
        feasible=True,
        shortfall_kw=0.0,
        total_w=total_w,
        unallocated_w=max(0.0, budget_w - total_w),
        caps_w=dict(zip(id_list, cap_w.tolist(), strict=True)),
        limited_by=cast(dict[int, LimitedBy], dict(zip(id_list, limited.tolist(), strict=True))),
        water_level_tok_per_j=level,
    )
