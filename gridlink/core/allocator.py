"""Fleet allocator: split a GPU power budget among nodes.

Rules, in the order they apply (``docs/gateway-core.md`` has a worked example):

1. **Bounds.** A node gets between ``min_w`` and its cap, where the cap is ``max_w``, or
   ``clamp(demand_w, min_w, max_w)`` when telemetry reports a demand: power a node cannot use
   goes to the others.
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
from itertools import chain
from numbers import Integral, Real
from typing import Literal, NoReturn, cast

import numpy as np
import numpy.typing as npt

from gridlink.core.curves import Curve
from gridlink.errors import AllocationError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
LimitedBy = Literal["max", "demand", "budget", "infeasible"]

__all__ = ["Allocation", "AllocationResult", "NodeSpec", "allocate"]


def _number(value: object, field: str, node_id: object, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise AllocationError(f"{field} of node {node_id} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise AllocationError(
            f"{field} of node {node_id} must be a finite number >= {minimum:g}, got {value!r}"
        )
    return number


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

    def __post_init__(self) -> None:
        if isinstance(self.node_id, bool) or not isinstance(self.node_id, Integral):
            raise AllocationError(f"node_id must be an int, got {self.node_id!r}")
        min_w = _number(self.min_w, "min_w", self.node_id)
        max_w = _number(self.max_w, "max_w", self.node_id, minimum=min_w)
        if isinstance(self.tier, bool) or not isinstance(self.tier, Integral) or self.tier < 0:
            raise AllocationError(f"tier of node {self.node_id} must be an int >= 0")
        object.__setattr__(self, "node_id", int(self.node_id))
        object.__setattr__(self, "tier", int(self.tier))
        object.__setattr__(self, "min_w", min_w)
        object.__setattr__(self, "max_w", max_w)
        object.__setattr__(self, "curve", () if self.curve is None else tuple(self.curve))
        if self.demand_w is not None:
            object.__setattr__(self, "demand_w", _number(self.demand_w, "demand_w", self.node_id))


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
    ``caps_w``: the most each node could take (max_w, or its demand within [min_w, max_w]).
    ``limited_by``: "max" or "demand" for a node at its cap, "budget" for one below it,
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


@dataclass(frozen=True, slots=True)
class _Segments:
    """Linear pieces of every node's hull: owner (index in node_id order), start, width, slope."""

    node: IntArray
    start_w: FloatArray
    width_w: FloatArray
    slope: FloatArray


def _flatten_curves(nodes: Sequence[NodeSpec], default_slope: float) -> tuple[IntArray, FloatArray]:
    """Every curve point as rows ``(power_w, throughput)``, with the point count per node."""
    curves = [
        node.curve
        or (
            ((node.min_w, 0.0),)
            if node.min_w == node.max_w
            else ((node.min_w, 0.0), (node.max_w, (node.max_w - node.min_w) * default_slope))
        )
        for node in nodes
    ]
    counts = np.fromiter(map(len, curves), dtype=np.int64, count=len(curves))
    try:
        flat = np.fromiter(chain.from_iterable(chain.from_iterable(curves)), dtype=np.float64)
    except (TypeError, ValueError):
        flat = np.empty(0)
    if flat.size != 2 * int(counts.sum()):
        for node, curve in zip(nodes, curves, strict=True):
            for point in curve:
                if len(point) != 2 or not all(isinstance(v, Real) for v in point):
                    raise AllocationError(
                        f"curve of node {node.node_id} must hold (power_w, throughput_tok_s) "
                        f"number pairs, got {point!r}"
                    )
        raise AllocationError("curves must hold (power_w, throughput_tok_s) number pairs")
    return counts, flat.reshape(-1, 2)


def _check_curves(
    nodes: Sequence[NodeSpec],
    min_w: FloatArray,
    max_w: FloatArray,
    counts: IntArray,
    points: FloatArray,
    owner: IntArray,
) -> None:
    """Refuse malformed curves, naming the first offending node."""

    def fail(index: int, rule: str) -> NoReturn:
        node = nodes[index]
        raise AllocationError(f"curve of node {node.node_id} {rule}; got {node.curve!r}")

    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        fail(int(owner[np.argmax(bad)]), "must hold finite numbers")
    too_short = (counts < 2) & (min_w < max_w)
    if too_short.any():
        fail(int(np.argmax(too_short)), "must have at least 2 points (or be empty)")
    first = np.cumsum(counts) - counts
    last = first + counts - 1
    wrong_ends = (points[first, 0] != min_w) | (points[last, 0] != max_w)
    if wrong_ends.any():
        i = int(np.argmax(wrong_ends))
        fail(i, f"must start at min_w={min_w[i]} W and end at max_w={max_w[i]} W")
    same = owner[1:] == owner[:-1]
    step = np.diff(points, axis=0)
    not_increasing = same & ~(step[:, 0] > 0)
    if not_increasing.any():
        fail(int(owner[np.argmax(not_increasing)]), "must have strictly increasing power_w")
    decreasing = same & (step[:, 1] < 0)
    if decreasing.any():
        fail(int(owner[np.argmax(decreasing)]), "must have non-decreasing throughput_tok_s")


def _hull_segments(owner: IntArray, points: FloatArray) -> _Segments:
    """Upper concave hull of every curve at once, as linear segments.

    Each pass drops every interior point strictly below the chord of its two current neighbours
    (slope in < slope out). Such a point is below a segment between two points of the curve, so
    it is never a hull vertex; when no such point is left the chain is concave and is the hull.
    A curve of k points needs at most k - 2 passes, each vectorised over the whole fleet.
    """
    power, tok = points[:, 0], points[:, 1]
    while power.size >= 3:
        # Slopes across two nodes' points are meaningless (and may divide by zero); masked out.
        interior = (owner[:-2] == owner[1:-1]) & (owner[1:-1] == owner[2:])
        with np.errstate(divide="ignore", invalid="ignore"):
            slope_in = (tok[1:-1] - tok[:-2]) / (power[1:-1] - power[:-2])
            slope_out = (tok[2:] - tok[1:-1]) / (power[2:] - power[1:-1])
        below = interior & (slope_in < slope_out)
        if not below.any():
            break
        keep = np.ones(power.size, dtype=bool)
        keep[1:-1] = ~below
        owner, power, tok = owner[keep], power[keep], tok[keep]
    pairs = np.flatnonzero(owner[1:] == owner[:-1])
    width = power[pairs + 1] - power[pairs]
    return _Segments(
        node=owner[pairs],
        start_w=power[pairs],
        width_w=width,
        slope=(tok[pairs + 1] - tok[pairs]) / width,
    )


def _water_fill(
    budget_w: float, segments: _Segments, width_w: FloatArray
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


def allocate(
    budget_w: float, nodes: Sequence[NodeSpec], *, default_slope_tok_per_j: float = 1.0
) -> AllocationResult:
    """Split ``budget_w`` among ``nodes`` (rules in the module docstring)."""
    if isinstance(budget_w, bool) or not isinstance(budget_w, Real):
        raise AllocationError(f"budget_w must be a number, got {budget_w!r}")
    budget_w = float(budget_w)
    if not math.isfinite(budget_w) or budget_w < 0:
        raise AllocationError(f"budget_w must be a finite number >= 0, got {budget_w!r}")
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
    id_list = ids.tolist()
    counts, points = _flatten_curves(ordered, default_slope_tok_per_j)
    owner = np.repeat(np.arange(count, dtype=np.int64), counts)
    _check_curves(ordered, min_w, max_w, counts, points, owner)

    sum_min_w = math.fsum(min_w.tolist())
    if budget_w < sum_min_w:
        return AllocationResult(
            allocations=dict(zip(id_list, min_w.tolist(), strict=True)),
            feasible=False,
            shortfall_kw=(sum_min_w - budget_w) / 1000.0,
            total_w=sum_min_w,
            unallocated_w=0.0,
            caps_w=dict(zip(id_list, cap_w.tolist(), strict=True)),
            limited_by=dict.fromkeys(id_list, "infeasible"),
            water_level_tok_per_j=None,
        )

    segments = _hull_segments(owner, points)
    usable_w = np.clip(
        np.minimum(segments.start_w + segments.width_w, cap_w[segments.node]) - segments.start_w,
        0.0,
        None,
    )

    alloc = min_w.copy()
    remaining_w = budget_w - sum_min_w
    level: float | None = None
    tier_values, tier_rank = np.unique(tiers, return_inverse=True)
    headroom_w = np.bincount(tier_rank, weights=cap_w - min_w, minlength=tier_values.size)
    for rank in range(tier_values.size):
        if remaining_w <= 0:
            break
        members = tier_rank == rank
        if remaining_w >= headroom_w[rank]:
            alloc[members] = cap_w[members]
            remaining_w -= float(headroom_w[rank])
            continue
        in_tier = (tier_rank[segments.node] == rank) & (usable_w > 0)
        tier_segments = _Segments(
            segments.node[in_tier],
            segments.start_w[in_tier],
            segments.width_w[in_tier],
            segments.slope[in_tier],
        )
        taken, level = _water_fill(remaining_w, tier_segments, usable_w[in_tier])
        alloc += np.bincount(tier_segments.node, weights=taken, minlength=count)
        break
    np.clip(alloc, min_w, cap_w, out=alloc)
    _trim_to_budget(alloc, min_w, budget_w)
    total_w = math.fsum(alloc.tolist())

    at_cap = alloc >= cap_w
    limited = np.where(
        at_cap & (cap_w >= max_w), "max", np.where(at_cap & has_demand, "demand", "budget")
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
