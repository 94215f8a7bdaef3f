"""The fleet's power curves as arrays: flattened, checked and cut into upper-hull segments,
vectorised over every node at once (used by ``gridlink.core.allocator``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from numbers import Real
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import numpy.typing as npt

from gridlink.errors import AllocationError

if TYPE_CHECKING:
    from gridlink.core.allocator import NodeSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class HullSegments:
    """Linear pieces of every node's hull: owner (index in node_id order), start, width, slope."""

    node: IntArray
    start_w: FloatArray
    width_w: FloatArray
    slope: FloatArray


def flatten_curves(nodes: Sequence[NodeSpec], default_slope: float) -> tuple[IntArray, FloatArray]:
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


def check_curves(
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


def hull_segments(owner: IntArray, points: FloatArray) -> HullSegments:
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
    return HullSegments(
        node=owner[pairs],
        start_w=power[pairs],
        width_w=width,
        slope=(tok[pairs + 1] - tok[pairs]) / width,
    )
