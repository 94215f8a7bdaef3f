"""telemetry minutes (exact per-minute sums kept by a trigger), late arrivals, history cache

The reports aggregated raw 1-second samples (18 M rows for a 4-hour event over 1,000 nodes) and
the comparable days' history on every generation. ``telemetry_minutes`` holds each node's
samples summed per minute as exact integers (value x 1000, rounded), maintained by a trigger on
``telemetry_samples`` inserts: a statement-level trigger with a transition table on PostgreSQL
(one grouped upsert per INSERT statement), a row-level one on SQLite. Existing raw samples and
rollups are summed into it here, the same way the reports summed them.

``telemetry_late_arrivals`` records batches stored late, for the reports' automatic corrections.

``report_history_intervals`` caches the facility power of past settlement intervals (the
high-X-of-Y comparable days). The same triggers delete the cached intervals a change of telemetry
touches: new samples (within the longest interval, an hour, before them), and deleted node-minute
sums (pruning, a node removed).

Revision ID: c4e8f1a2b9d6
Revises: c4e91b7d2a36
Create Date: 2026-12-02 13:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gridlink.db.base

revision: str = "c4e8f1a2b9d6"
down_revision: str | None = "c4e91b7d2a36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_MINUTE = "strftime('%Y-%m-%d %H:%M:00.000000', {})"  # UTCDateTime's text on SQLite
COLUMNS = (
    "node_id, minute, samples, power_mw, throughput_mtok_s, demand_mtok_s, demand_samples, "
    "qos_violations"
)
SUMMED = ("samples", "power_mw", "throughput_mtok_s", "demand_mtok_s", "demand_samples")
# The upsert adds the new sums to the stored ones (SQLite refuses a table alias in a trigger).
ADD = ", ".join(f"{c} = telemetry_minutes.{c} + excluded.{c}" for c in (*SUMMED, "qos_violations"))

PG_FUNCTION = f"""
CREATE FUNCTION telemetry_minutes_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO telemetry_minutes ({COLUMNS})
    SELECT node_id, date_trunc('minute', ts), count(*),
        sum(round(power_w * 1000)::bigint),
        sum(round(throughput_tok_s * 1000)::bigint),
        coalesce(sum(round(demand_tok_s * 1000)::bigint), 0),
        count(demand_tok_s),
        count(*) FILTER (WHERE qos_violation)
    FROM new_samples
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (node_id, minute) DO UPDATE SET {ADD};
    DELETE FROM report_history_intervals
    WHERE bucket_start <= (SELECT max(ts) FROM new_samples)
        AND bucket_start > (SELECT min(ts) FROM new_samples) - interval '1 hour';
    RETURN NULL;
END
$$
"""

PG_FORGET_FUNCTION = """
CREATE FUNCTION report_history_forget_minutes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM report_history_intervals
    WHERE bucket_start <= (SELECT max(minute) FROM gone_minutes)
        AND bucket_start > (SELECT min(minute) FROM gone_minutes) - interval '1 hour';
    RETURN NULL;
END
$$
"""

PG_FORGET_TRIGGER = """
CREATE TRIGGER telemetry_minutes_forget_history AFTER DELETE ON telemetry_minutes
REFERENCING OLD TABLE AS gone_minutes
FOR EACH STATEMENT EXECUTE FUNCTION report_history_forget_minutes()
"""

SQLITE_FORGET_TRIGGER = """
CREATE TRIGGER telemetry_minutes_forget_history AFTER DELETE ON telemetry_minutes FOR EACH ROW
BEGIN
    DELETE FROM report_history_intervals
    WHERE bucket_start <= OLD.minute AND bucket_start > datetime(OLD.minute, '-1 hour');
END
"""

PG_TRIGGER = """
CREATE TRIGGER telemetry_samples_minutes AFTER INSERT ON telemetry_samples
REFERENCING NEW TABLE AS new_samples
FOR EACH STATEMENT EXECUTE FUNCTION telemetry_minutes_add()
"""

SQLITE_TRIGGER = f"""
CREATE TRIGGER telemetry_samples_minutes AFTER INSERT ON telemetry_samples FOR EACH ROW
BEGIN
    INSERT INTO telemetry_minutes ({COLUMNS})
    VALUES (
        NEW.node_id,
        {SQLITE_MINUTE.format("NEW.ts")},
        1,
        CAST(round(NEW.power_w * 1000) AS INTEGER),
        CAST(round(NEW.throughput_tok_s * 1000) AS INTEGER),
        coalesce(CAST(round(NEW.demand_tok_s * 1000) AS INTEGER), 0),
        NEW.demand_tok_s IS NOT NULL,
        coalesce(NEW.qos_violation, 0)
    )
    ON CONFLICT (node_id, minute) DO UPDATE SET {ADD};
    DELETE FROM report_history_intervals
    WHERE bucket_start <= NEW.ts AND bucket_start > datetime(NEW.ts, '-1 hour');
END
"""


def _backfill(dialect: str) -> str:
    """Raw samples and rollups summed per node and minute, as the reports summed them; written in
    time order, as the trigger writes them, so a time range reads few pages."""
    postgresql = dialect == "postgresql"
    minute = "date_trunc('minute', ts)" if postgresql else SQLITE_MINUTE.format("ts")

    def milli(expr: str) -> str:
        rounded = f"round(({expr}) * 1000)"
        return f"{rounded}::bigint" if postgresql else f"CAST({rounded} AS INTEGER)"

    return f"""
INSERT INTO telemetry_minutes ({COLUMNS})
SELECT node_id, minute, sum(samples), sum(power_mw), sum(throughput_mtok_s),
    sum(demand_mtok_s), sum(demand_samples), sum(qos_violations)
FROM (
    SELECT node_id, {minute} AS minute, count(*) AS samples,
        sum({milli("power_w")}) AS power_mw,
        sum({milli("throughput_tok_s")}) AS throughput_mtok_s,
        coalesce(sum({milli("demand_tok_s")}), 0) AS demand_mtok_s,
        count(demand_tok_s) AS demand_samples,
        sum(CASE WHEN qos_violation THEN 1 ELSE 0 END) AS qos_violations
    FROM telemetry_samples
    GROUP BY 1, 2
    UNION ALL
    SELECT node_id, bucket_start, sample_count,
        {milli("power_w_avg * sample_count")},
        {milli("throughput_tok_s_avg * sample_count")},
        0, 0, qos_violation_count
    FROM telemetry_rollups
) AS both_sources
GROUP BY node_id, minute
ORDER BY minute, node_id
"""


def upgrade() -> None:
    op.create_table(
        "telemetry_minutes",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("minute", gridlink.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("power_mw", sa.BigInteger(), nullable=False),
        sa.Column("throughput_mtok_s", sa.BigInteger(), nullable=False),
        sa.Column("demand_mtok_s", sa.BigInteger(), nullable=False),
        sa.Column("demand_samples", sa.Integer(), nullable=False),
        sa.Column("qos_violations", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_telemetry_minutes_node_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", "minute", name=op.f("pk_telemetry_minutes")),
    )
    op.create_index("ix_telemetry_minutes_minute", "telemetry_minutes", ["minute"], unique=False)
    op.create_table(
        "telemetry_late_arrivals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("first_ts", gridlink.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_ts", gridlink.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("stored_at", gridlink.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_telemetry_late_arrivals_node_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_late_arrivals")),
    )
    op.create_index(
        "ix_telemetry_late_arrivals_stored_at",
        "telemetry_late_arrivals",
        ["stored_at"],
        unique=False,
    )
    op.create_table(
        "report_history_intervals",
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("bucket_start", gridlink.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("power_mw", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint(
            "interval_s", "bucket_start", name=op.f("pk_report_history_intervals")
        ),
    )
    op.create_index(
        "ix_report_history_intervals_bucket_start",
        "report_history_intervals",
        ["bucket_start"],
        unique=False,
    )
    dialect = op.get_bind().dialect.name
    op.execute(_backfill(dialect))
    if dialect == "postgresql":
        for statement in (PG_FUNCTION, PG_TRIGGER, PG_FORGET_FUNCTION, PG_FORGET_TRIGGER):
            op.execute(statement)
    else:
        op.execute(SQLITE_TRIGGER)
        op.execute(SQLITE_FORGET_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS telemetry_samples_minutes ON telemetry_samples")
        op.execute("DROP FUNCTION IF EXISTS telemetry_minutes_add()")
        op.execute("DROP TRIGGER IF EXISTS telemetry_minutes_forget_history ON telemetry_minutes")
        op.execute("DROP FUNCTION IF EXISTS report_history_forget_minutes()")
    else:
        op.execute("DROP TRIGGER IF EXISTS telemetry_samples_minutes")
        op.execute("DROP TRIGGER IF EXISTS telemetry_minutes_forget_history")
    op.drop_index("ix_report_history_intervals_bucket_start", table_name="report_history_intervals")
    op.drop_table("report_history_intervals")
    op.drop_index("ix_telemetry_late_arrivals_stored_at", table_name="telemetry_late_arrivals")
    op.drop_table("telemetry_late_arrivals")
    op.drop_index("ix_telemetry_minutes_minute", table_name="telemetry_minutes")
    op.drop_table("telemetry_minutes")
