"""A budget version's per-node allocations as one compact matrix (pure, numpy).

A version allocates every node over the same planner segments, so its allocations are a
``nodes x intervals`` matrix of watts over one shared list of instants: ``powers_w[i, j]`` is
node ``node_ids[i]``'s power over ``[instants[j], instants[j + 1])`` (NaN: no allocation there).
It is stored as one compressed blob per version (a few kB for 1,000 nodes) instead of one row
per node and segment, written with one INSERT and read with one SELECT.

A node's trajectory is its row with adjacent equal values merged: the same pieces, in the same
order, as one row per merged segment gave, so what a node receives is unchanged.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_HEADER = struct.Struct("<4sII")  # magic, node count, instant count
_MAGIC = b"GLA1"


def to_us(at: datetime) -> int:
    """Microseconds since the epoch (exact, unlike ``timestamp()``)."""
    return (at - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


class AllocationPiece(NamedTuple):
    """One node's constant allocation over ``[start_at, end_at)``."""

    node_id: int
    start_at: datetime
    end_at: datetime
    power_w: float


@dataclass(frozen=True, eq=False)
class AllocationMatrix:
    node_ids: IntArray  # (n,), increasing
    instants_us: IntArray  # (k + 1,), increasing; empty when there is no interval
    powers_w: FloatArray  # (n, k)

    # -- building --------------------------------------------------------------------------

    @classmethod
    def from_columns(
        cls,
        node_ids: Iterable[int],
        spans: list[tuple[datetime, datetime]],
        columns: list[FloatArray],
    ) -> AllocationMatrix:
        """Every node's power over each span: ``columns[s][i]`` for node ``i`` over
        ``spans[s]``. Spans must not overlap; gaps between them stay empty."""
        ids = np.fromiter(node_ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        instants = np.unique(
            np.fromiter((to_us(t) for span in spans for t in span), dtype=np.int64)
        )
        powers = np.full((len(ids), max(len(instants) - 1, 0)), np.nan)
        for (start, end), column in zip(spans, columns, strict=True):
            lo, hi = np.searchsorted(instants, [to_us(start), to_us(end)])
            powers[:, lo:hi] = np.asarray(column, dtype=np.float64)[order, None]
        return cls(ids[order], instants, powers)

    @classmethod
    def from_pieces(cls, pieces: Iterable[AllocationPiece]) -> AllocationMatrix:
        """From arbitrary per-node pieces (tests, migrations)."""
        items = list(pieces)
        ids = np.unique(np.fromiter((p.node_id for p in items), dtype=np.int64))
        instants = np.unique(
            np.fromiter((to_us(t) for p in items for t in (p.start_at, p.end_at)), dtype=np.int64)
        )
        powers = np.full((len(ids), max(len(instants) - 1, 0)), np.nan)
        for p in items:
            row = np.searchsorted(ids, p.node_id)
            lo, hi = np.searchsorted(instants, [to_us(p.start_at), to_us(p.end_at)])
            powers[row, lo:hi] = p.power_w
        return cls(ids, instants, powers)

    # -- storage ---------------------------------------------------------------------------

    def encode(self) -> bytes:
        header = _HEADER.pack(_MAGIC, len(self.node_ids), len(self.instants_us))
        body = b"".join(
            a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
            for a in (self.node_ids, self.instants_us, self.powers_w)
        )
        return header + zlib.compress(body, 1)

    @classmethod
    def decode(cls, blob: bytes) -> AllocationMatrix:
        magic, n, m = _HEADER.unpack_from(blob)
        if magic != _MAGIC:
            raise ValueError("not an allocation matrix")
        body = zlib.decompress(blob[_HEADER.size :])
        ids = np.frombuffer(body, dtype="<i8", count=n).astype(np.int64)
        instants = np.frombuffer(body, dtype="<i8", count=m, offset=8 * n).astype(np.int64)
        k = max(m - 1, 0)
        powers = np.frombuffer(body, dtype="<f8", count=n * k, offset=8 * (n + m))
        return cls(ids, instants, powers.astype(np.float64).reshape(n, k))

    # -- reading ---------------------------------------------------------------------------

    def pieces(
        self, *, node_id: int | None = None, ending_after: datetime | None = None
    ) -> list[AllocationPiece]:
        """Merged pieces ordered by node, then start; optionally one node's, or only those
        ending after an instant."""
        return [
            AllocationPiece(*run) for run in self.runs(node_id=node_id, ending_after=ending_after)
        ]

    def runs(
        self, *, node_id: int | None = None, ending_after: datetime | None = None
    ) -> list[tuple[int, datetime, datetime, float]]:
        """:meth:`pieces` as plain tuples ``(node_id, start, end, power_w)`` (the fast path)."""
        rows = np.arange(len(self.node_ids))
        if node_id is not None:  # node_ids are sorted: one row found in O(log n)
            row = int(np.searchsorted(self.node_ids, node_id))
            found = row < len(self.node_ids) and self.node_ids[row] == node_id
            rows = rows[row : row + 1] if found else rows[:0]
        powers = self.powers_w[rows]
        if powers.size == 0:
            return []
        valid = ~np.isnan(powers)
        same_as_prev = np.zeros_like(valid)
        same_as_prev[:, 1:] = powers[:, 1:] == powers[:, :-1]
        same_as_next = np.zeros_like(valid)
        same_as_next[:, :-1] = same_as_prev[:, 1:]
        start_r, start_c = np.nonzero(valid & ~same_as_prev)
        _, end_c = np.nonzero(valid & ~same_as_next)
        if ending_after is not None:
            keep = self.instants_us[end_c + 1] > to_us(ending_after)
            start_r, start_c, end_c = start_r[keep], start_c[keep], end_c[keep]
        instants = [from_us(us) for us in self.instants_us.tolist()]
        starts = [instants[c] for c in start_c.tolist()]
        ends = [instants[c + 1] for c in end_c.tolist()]
        ids = self.node_ids[rows][start_r].tolist()
        values = powers[start_r, start_c].tolist()
        return list(zip(ids, starts, ends, values, strict=True))

    def by_node(self, *, ending_after: datetime | None = None) -> dict[int, list[AllocationPiece]]:
        result: dict[int, list[AllocationPiece]] = {}
        for piece in self.pieces(ending_after=ending_after):
            result.setdefault(piece.node_id, []).append(piece)
        return result

    def values_at(self, times_us: IntArray, *, extend: bool) -> FloatArray:
        """Every node's power at each instant (n x len(times)); NaN where there is none. With
        ``extend``, the last interval continues past the end."""
        k = self.powers_w.shape[1]
        out = np.full((len(self.node_ids), len(times_us)), np.nan)
        if k == 0:
            return out
        cols = np.searchsorted(self.instants_us, times_us, side="right") - 1
        if extend:
            cols = np.minimum(cols, k - 1)
        inside = (cols >= 0) & (cols < k)
        out[:, inside] = self.powers_w[:, cols[inside]]
        return out

    def power_at(self, at: datetime) -> dict[int, float]:
        column = self.values_at(np.array([to_us(at)], dtype=np.int64), extend=False)[:, 0]
        present = ~np.isnan(column)
        return dict(zip(self.node_ids[present].tolist(), column[present].tolist(), strict=True))


def same_allocations(
    old: AllocationMatrix, new: AllocationMatrix, start: datetime, end: datetime, *, extend: bool
) -> bool:
    """Whether ``old`` gives every node the same power as ``new`` at every instant of
    ``[start, end)``; with ``extend``, ``old``'s last interval continues past its end."""
    if not np.array_equal(old.node_ids, new.node_ids):
        return False
    lo, hi = to_us(start), to_us(end)
    grid = np.unique(np.concatenate([old.instants_us, new.instants_us, [lo, hi]]))
    grid = grid[(grid >= lo) & (grid < hi)]
    return np.array_equal(
        old.values_at(grid, extend=extend), new.values_at(grid, extend=True), equal_nan=True
    )
