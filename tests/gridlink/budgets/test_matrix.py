"""The compact allocation matrix: same pieces as per-row storage, exact round trip (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from gridlink.budgets.matrix import AllocationMatrix, AllocationPiece, same_allocations

T = datetime(2026, 7, 1, 0, 0, 0, 123456, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


PIECES = [
    AllocationPiece(3, at(0), at(10), 650.125),
    AllocationPiece(3, at(10), at(30), 0.1 + 0.2),
    AllocationPiece(7, at(0), at(5), 1e-7),
    AllocationPiece(7, at(20), at(30), 3e20),  # a gap from 5 to 20
    AllocationPiece(11, at(0), at(30), 500.0),
]


def test_pieces_round_trip_through_the_blob_exactly() -> None:
    matrix = AllocationMatrix.decode(AllocationMatrix.from_pieces(PIECES).encode())
    assert matrix.pieces() == PIECES
    assert matrix.pieces(node_id=7) == PIECES[2:4]
    assert matrix.pieces(node_id=99) == []
    assert matrix.pieces(ending_after=at(10)) == [PIECES[1], PIECES[3], PIECES[4]]


def test_equal_neighbours_merge_into_one_piece() -> None:
    spans = [(at(0), at(10)), (at(10), at(20)), (at(20), at(30))]
    columns = [np.array([5.0, 1.0]), np.array([5.0, 2.0]), np.array([6.0, 2.0])]
    matrix = AllocationMatrix.from_columns([9, 4], spans, columns)
    assert matrix.pieces() == [
        AllocationPiece(4, at(0), at(10), 1.0),
        AllocationPiece(4, at(10), at(30), 2.0),
        AllocationPiece(9, at(0), at(20), 5.0),
        AllocationPiece(9, at(20), at(30), 6.0),
    ]
    assert matrix.power_at(at(15)) == {4: 2.0, 9: 5.0}
    assert matrix.power_at(at(30)) == {}


def test_an_empty_matrix_encodes_and_reads_as_nothing() -> None:
    matrix = AllocationMatrix.decode(AllocationMatrix.from_pieces([]).encode())
    assert matrix.pieces() == []
    assert matrix.power_at(T) == {}


def test_same_allocations_compares_over_the_window_only() -> None:
    old = AllocationMatrix.from_pieces(PIECES)
    changed = AllocationMatrix.from_pieces([*PIECES[:4], AllocationPiece(11, at(0), at(30), 1.0)])
    assert same_allocations(old, AllocationMatrix.from_pieces(PIECES), at(0), at(30), extend=False)
    assert not same_allocations(old, changed, at(0), at(30), extend=False)
    longer = AllocationMatrix.from_pieces(
        [
            *PIECES[:4],
            AllocationPiece(11, at(0), at(40), 500.0),
            AllocationPiece(3, at(10), at(40), 0.1 + 0.2),
            AllocationPiece(7, at(20), at(40), 3e20),
        ]
    )
    assert not same_allocations(old, longer, at(0), at(40), extend=False)
    assert same_allocations(old, longer, at(0), at(40), extend=True)
