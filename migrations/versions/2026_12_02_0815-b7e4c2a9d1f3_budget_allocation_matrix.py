"""budget allocations as one compact matrix per version (replaces node_allocations rows)

Revision ID: b7e4c2a9d1f3
Revises: 6719fc616ea0
Create Date: 2026-12-02 08:15:00+00:00

Each version's per-node allocation segments become one row holding a compressed
``nodes x intervals`` matrix (the format of ``gridlink.budgets.matrix``, written out here so the
revision stays self-contained). Existing rows are converted; downgrade converts them back.
"""

import struct
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from alembic import op

import gridlink.db.base

revision: str = "b7e4c2a9d1f3"
down_revision: str | None = "6719fc616ea0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEADER = struct.Struct("<4sII")


def _us(at: datetime) -> int:
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return (at - _EPOCH) // timedelta(microseconds=1)


def _encode(rows: list[tuple[int, datetime, datetime, float]]) -> tuple[int, bytes]:
    ids = np.unique(np.array([r[0] for r in rows], dtype=np.int64))
    instants = np.unique(np.array([_us(t) for r in rows for t in r[1:3]], dtype=np.int64))
    powers = np.full((len(ids), max(len(instants) - 1, 0)), np.nan)
    for node_id, start, end, power_w in rows:
        lo, hi = np.searchsorted(instants, [_us(start), _us(end)])
        powers[np.searchsorted(ids, node_id), lo:hi] = power_w
    body = b"".join(a.astype(a.dtype.newbyteorder("<")).tobytes() for a in (ids, instants, powers))
    return len(ids), _HEADER.pack(b"GLA1", len(ids), len(instants)) + zlib.compress(body, 1)


def upgrade() -> None:
    op.create_table(
        "budget_allocations",
        sa.Column("budget_version_id", sa.Integer(), nullable=False),
        sa.Column("node_count", sa.Integer(), nullable=False),
        sa.Column("matrix", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_version_id"],
            ["budget_versions.id"],
            name=op.f("fk_budget_allocations_budget_version_id_budget_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("budget_version_id", name=op.f("pk_budget_allocations")),
    )
    conn = op.get_bind()
    by_version: dict[int, list[tuple[int, datetime, datetime, float]]] = {}
    for version_id, node_id, start, end, power_w in conn.execute(
        sa.text(
            "SELECT budget_version_id, node_id, start_at, end_at, power_w FROM node_allocations"
        )
    ):
        if isinstance(start, str):  # SQLite returns text
            start, end = datetime.fromisoformat(start), datetime.fromisoformat(end)
        by_version.setdefault(version_id, []).append((node_id, start, end, power_w))
    table = sa.table(
        "budget_allocations",
        sa.column("budget_version_id", sa.Integer()),
        sa.column("node_count", sa.Integer()),
        sa.column("matrix", sa.LargeBinary()),
    )
    for version_id, rows in by_version.items():
        count, blob = _encode(rows)
        conn.execute(
            table.insert().values(budget_version_id=version_id, node_count=count, matrix=blob)
        )
    with op.batch_alter_table("node_allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_node_allocations_node_id"))
        batch_op.drop_index(batch_op.f("ix_node_allocations_budget_version_id"))
    op.drop_table("node_allocations")


def downgrade() -> None:
    op.create_table(
        "node_allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("budget_version_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("start_at", gridlink.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", gridlink.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("power_w", sa.Float(), nullable=False),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_node_allocations_segment_ordered")),
        sa.CheckConstraint("power_w >= 0", name=op.f("ck_node_allocations_power_nonnegative")),
        sa.ForeignKeyConstraint(
            ["budget_version_id"],
            ["budget_versions.id"],
            name=op.f("fk_node_allocations_budget_version_id_budget_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_node_allocations_node_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_allocations")),
    )
    with op.batch_alter_table("node_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_node_allocations_budget_version_id"), ["budget_version_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_node_allocations_node_id"), ["node_id"], unique=False)
    conn = op.get_bind()
    table = sa.table(
        "node_allocations",
        sa.column("budget_version_id", sa.Integer()),
        sa.column("node_id", sa.Integer()),
        sa.column("start_at", gridlink.db.base.UTCDateTime()),
        sa.column("end_at", gridlink.db.base.UTCDateTime()),
        sa.column("power_w", sa.Float()),
    )
    for version_id, blob in conn.execute(
        sa.text("SELECT budget_version_id, matrix FROM budget_allocations")
    ):
        _, n, m = _HEADER.unpack_from(blob)
        body = zlib.decompress(blob[_HEADER.size :])
        ids = np.frombuffer(body, "<i8", n)
        instants = np.frombuffer(body, "<i8", m, 8 * n)
        powers = np.frombuffer(body, "<f8", n * max(m - 1, 0), 8 * (n + m)).reshape(n, -1)
        rows = []
        for i, node_id in enumerate(ids.tolist()):
            values = powers[i].tolist()
            j = 0
            while j < len(values):
                value, end = values[j], j + 1
                while end < len(values) and values[end] == value:  # merge equal neighbours
                    end += 1
                if value == value:  # not NaN
                    rows.append(
                        {
                            "budget_version_id": version_id,
                            "node_id": node_id,
                            "start_at": _EPOCH + timedelta(microseconds=int(instants[j])),
                            "end_at": _EPOCH + timedelta(microseconds=int(instants[end])),
                            "power_w": value,
                        }
                    )
                j = end
        if rows:
            conn.execute(table.insert(), rows)
    op.drop_table("budget_allocations")
