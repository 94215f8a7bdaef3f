"""telemetry sample ids (idempotent replay), mode and per-GPU caps

Revision ID: a9e4c2d7b1f3
Revises: b7e4c2a9d1f3
Create Date: 2026-12-02 08:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a9e4c2d7b1f3"
down_revision: str | None = "b7e4c2a9d1f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("telemetry_samples") as batch:
        batch.add_column(sa.Column("sample_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("mode", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("gpu_power_caps_w", sa.JSON(), nullable=True))
    op.create_index(
        "ux_telemetry_samples_node_id_sample_id",
        "telemetry_samples",
        ["node_id", "sample_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_telemetry_samples_node_id_sample_id", table_name="telemetry_samples")
    with op.batch_alter_table("telemetry_samples") as batch:
        batch.drop_column("gpu_power_caps_w")
        batch.drop_column("mode")
        batch.drop_column("sample_id")
