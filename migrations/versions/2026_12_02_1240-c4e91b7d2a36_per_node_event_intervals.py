"""per-node event intervals

An event interval may limit one node (its maximum power) instead of the facility: an OpenADR
event targeted at a node's resource.

Revision ID: c4e91b7d2a36
Revises: a7d3c0e51b2f
Create Date: 2026-12-02 12:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e91b7d2a36"
down_revision: str | None = "a7d3c0e51b2f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_intervals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_event_intervals_node_id"), ["node_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_event_intervals_node_id_nodes"),
            "nodes",
            ["node_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("event_intervals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_event_intervals_node_id_nodes"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_event_intervals_node_id"))
        batch_op.drop_column("node_id")
