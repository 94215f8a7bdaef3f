"""Comparing budget results: does a new plan say anything the latest version does not? (pure)

Results are reduced to piecewise-constant pieces (facility limit, budget, contributors and
binding event) and an allocation matrix (each node's power), rounded to 1e-3, then compared
over the shared time from ``now`` on, the matrices vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from gridlink.budgets.matrix import AllocationMatrix, FloatArray, same_allocations
from gridlink.core.allocator import NodeSpec
from gridlink.core.planner import Segment
from gridlink.core.trajectory import NodeLimit, allocate_segments
from gridlink.models.budget import BudgetVersion


@dataclass(frozen=True)
class Piece:
    start: datetime
    end: datetime
    value: tuple[Any, ...]


def _merge(pieces: list[Piece]) -> list[Piece]:
    merged: list[Piece] = []
    for piece in pieces:
        if merged and merged[-1].value == piece.value and merged[-1].end == piece.start:
            merged[-1] = Piece(merged[-1].start, piece.end, piece.value)
        else:
            merged.append(piece)
    return merged


def _canonical(pieces: list[Piece], start: datetime, end: datetime, extend: bool) -> list[Piece]:
    """``pieces`` clipped to ``[start, end)`` and merged; with ``extend``, the last one is
    stretched to ``end``."""
    clipped = [
        Piece(max(p.start, start), min(p.end, end), p.value)
        for p in pieces
        if p.end > start and p.start < end
    ]
    if extend and clipped and clipped[-1].end < end:
        clipped[-1] = Piece(clipped[-1].start, end, clipped[-1].value)
    return _merge(clipped)


def _r(value: float) -> float:
    return round(value, 3)


def round_mw(values: FloatArray) -> FloatArray:
    """``round(v, 3)`` of every value, exactly as Python rounds it: numpy's ``rint(v * 1000)``
    agrees except within round-off of a tie, and those few take Python's ``round``."""
    scaled = values * 1000.0
    out: FloatArray = np.rint(scaled) / 1000.0
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-3).tolist():
        out[i] = round(float(values[i]), 3)
    return out


@dataclass(frozen=True)
class Result:
    segments: list[dict[str, Any]]
    facility: list[Piece]
    allocations: AllocationMatrix


def allocate_plan(
    segments: list[Segment], specs: list[NodeSpec], node_limits: Sequence[NodeLimit] = ()
) -> Result:
    """Allocate every segment among ``specs`` (each node under its ``node_limits``); each
    node's power rounded to 1e-3 W."""
    trajectory: list[dict[str, Any]] = []
    facility: list[Piece] = []
    spans: list[tuple[datetime, datetime]] = []
    columns: list[FloatArray] = []
    rounded: dict[int, FloatArray] = {}  # one column per distinct allocation result
    node_ids = sorted(spec.node_id for spec in specs)  # the allocator's order
    for item in allocate_segments(segments, specs, node_limits):  # one per distinct budget
        seg, result = item.segment, item.result
        trajectory.append(
            {
                "start": seg.start.isoformat(),
                "end": seg.end.isoformat(),
                "facility_limit_kw": seg.facility_limit_kw,
                "gpu_budget_kw": seg.gpu_budget_kw,
                "contributing_event_ids": list(seg.contributing_event_ids),
                "binding_event_id": seg.binding_event_id,
                "feasible": result.feasible,
                "shortfall_kw": result.shortfall_kw,
                "allocated_w": result.total_w,
            }
        )
        facility.append(
            Piece(
                seg.start,
                seg.end,
                (
                    _r(seg.facility_limit_kw),
                    _r(seg.gpu_budget_kw),
                    seg.contributing_event_ids,
                    seg.binding_event_id,
                ),
            )
        )
        column = rounded.get(id(result))
        if column is None:
            powers = np.fromiter(result.allocations.values(), np.float64, len(node_ids))
            column = rounded[id(result)] = round_mw(powers)
        spans.append((seg.start, seg.end))
        columns.append(column)
    matrix = AllocationMatrix.from_columns(node_ids, spans, columns)
    return Result(trajectory, _merge(facility), matrix)


def stored_result(version: BudgetVersion, allocations: AllocationMatrix) -> Result:
    facility = [
        Piece(
            datetime.fromisoformat(s["start"]),
            datetime.fromisoformat(s["end"]),
            (
                _r(s["facility_limit_kw"]),
                _r(s["gpu_budget_kw"]),
                tuple(s["contributing_event_ids"]),
                s["binding_event_id"],
            ),
        )
        for s in version.trajectory
    ]
    return Result(version.trajectory, _merge(facility), allocations)


def same_from(old: Result, new: Result, start: datetime, end: datetime) -> bool:
    """Whether ``old`` already says what ``new`` says over ``[start, end)``.

    Beyond its own window an old version is taken to continue its last segment only when that
    segment is the no-event state (nothing changes until an event); after an event segment the
    old version knows nothing, so a longer new window is news.
    """
    if not old.facility:
        return False
    extend = old.facility[-1].value[2] == ()
    if _canonical(old.facility, start, end, extend) != _canonical(new.facility, start, end, True):
        return False
    return same_allocations(old.allocations, new.allocations, start, end, extend=extend)
