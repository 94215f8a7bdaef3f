"""Report generation on PostgreSQL: a 4-hour event over 1,000 nodes with 1-second telemetry.

Setup: a fresh, migrated PostgreSQL database; N nodes (with stock curves); raw telemetry every
second for every node over the event and the hour before it (pre-event window), generated
server-side (INSERT ... SELECT generate_series, with the real indexes and the node-minute trigger
in place); the ten comparable weekdays before as what the gateway keeps of them once their raw
samples expire, 1-minute rollups and node-minute sums, over the same-day adjustment window and the
event hours. Then, timed: the report as the scheduler and the
API make it: assemble the inputs (SQL aggregation per node and settlement interval, facility
history for the comparable days), compute the body, hash, store. Run per settlement interval.

    .venv/bin/python benchmarks/report_event.py [--nodes 1000] [--hours 4] [--repeat 2]
        [--keep-db NAME]

Prints the rows seeded, then per interval length the wall time of each stage, the total and the
report's content hash (the same data must always give the same hash): first cold (no cached
comparable-day history: the report aggregates it), then the scheduler's history fill (what it
does once a day settles), then ``--repeat`` runs as in production (history cached). Every timed
run starts from no stored report. ``--keep-db NAME`` keeps the seeded database under that name
and reuses it on the next run (migrated to head first; nothing re-seeded), so a re-measurement
takes seconds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
from _harness import libpq, load_average, scratch_database, server_url
from psycopg import sql
from sqlalchemy.engine import make_url

START = datetime(2026, 7, 1, 13, 0, tzinfo=UTC)  # a Wednesday
DAY_S = 86_400


def seed(url: str, *, nodes: int, hours: float) -> tuple[int, int, int, int]:
    """Nodes, raw samples (their node-minute sums kept by the database's trigger), rollups and
    node-minute sums of the comparable days, all server-side. Returns the four counts."""
    event_s = int(hours * 3600)
    first = START - timedelta(hours=1)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(
            """INSERT INTO nodes (name, gpu_type, gpu_count, min_power_w, max_power_w,
                   gpu_min_cap_w, gpu_max_cap_w, idle_power_w, curve, stock_curve,
                   flexibility_tier, status, created_at, updated_at)
               SELECT 'bench-' || n, 'H100-SXM', 8, 2000, 6000, 200, 700, 400,
                   '[[2000, 4000], [6000, 9000]]', '[[0, 2400], [9000, 6000]]', 1, 'online',
                   now(), now()
               FROM generate_series(1, %s) n""",
            (nodes,),
        )
        # Power follows demand; during the event every node holds 30 % less. Inserted in
        # 10-minute slices, in time order, as telemetry arrives (the BRIN index on ts relies on
        # that physical order).
        last = 3600 + event_s
        for slice_start in range(0, last, 600):
            conn.execute(
                """INSERT INTO telemetry_samples (node_id, ts, power_w, throughput_tok_s,
                       demand_tok_s, power_cap_w, batch_limit, requests_waiting, qos_violation)
                   SELECT n.id, %(first)s + make_interval(secs => s),
                       (2400 + 0.4 * (5000 + (s %% 600))) * CASE WHEN s >= 3600 THEN 0.7 ELSE 1 END,
                       5000 + (s %% 600) - CASE WHEN s >= 3600 THEN 400 ELSE 0 END,
                       5000 + (s %% 600), 700, 256, 0, (s + n.id) %% 997 = 0
                   FROM generate_series(%(a)s::int, %(b)s::int) s, nodes n""",
                {"first": first, "a": slice_start, "b": min(slice_start + 600, last) - 1},
            )
        weekdays = [b for b in range(1, 15) if (START - timedelta(days=b)).weekday() < 5]
        for back in weekdays[:10]:  # the ten weekdays before
            day_first = START - timedelta(days=back, hours=3)
            conn.execute(
                """INSERT INTO telemetry_rollups (node_id, bucket_start, sample_count,
                       power_w_avg, power_w_max, throughput_tok_s_avg, power_cap_w_avg,
                       qos_violation_count)
                   SELECT n.id, %(first)s + make_interval(mins => m), 60,
                       4300 + 10 * %(back)s + (m %% 30), 4500, 5000, 700, 0
                   FROM nodes n, generate_series(0, %(last)s) m ORDER BY m, n.id""",
                {"first": day_first, "back": back, "last": int(3 * 60 + hours * 60) - 1},
            )
            # The node-minute sums the trigger kept when these minutes' samples were stored
            # (they outlive the raw samples, like the rollups): the same figures, time-ordered.
            conn.execute(
                """INSERT INTO telemetry_minutes (node_id, minute, samples, power_mw,
                       throughput_mtok_s, demand_mtok_s, demand_samples, qos_violations)
                   SELECT node_id, bucket_start, sample_count,
                       round(power_w_avg * sample_count * 1000)::bigint,
                       round(throughput_tok_s_avg * sample_count * 1000)::bigint, 0, 0,
                       qos_violation_count
                   FROM telemetry_rollups
                   WHERE bucket_start >= %(first)s AND bucket_start < %(end)s
                   ORDER BY bucket_start, node_id""",
                {"first": day_first, "end": day_first + timedelta(hours=3 + hours)},
            )
        # What autovacuum does after a bulk load: summarise the BRIN ranges (an unsummarised
        # range matches every query) and refresh the statistics.
        conn.execute("VACUUM ANALYZE")
        counts = [
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            for table in ("nodes", "telemetry_samples", "telemetry_rollups", "telemetry_minutes")
        ]
    return tuple(int(c[0]) if c else 0 for c in counts)  # type: ignore[return-value]


@contextmanager
def kept_database(name: str) -> Iterator[tuple[str, bool]]:
    """``(url, fresh)`` of the database ``name``, created when missing, migrated to head, kept."""
    from gridlink.db import migrate

    server = make_url(server_url()).set(drivername="postgresql")
    admin = server.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server.set(drivername="postgresql+psycopg", database=name)
    rendered = url.render_as_string(hide_password=False)
    migrate.upgrade(rendered)
    yield rendered, not exists


def forget_reports(url: str, *, history: bool) -> None:
    """No stored report, so each timed run generates one (store() keeps an unchanged version);
    with ``history``, no cached comparable-day history either (a cold start)."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("DELETE FROM reports")
        if history:
            conn.execute("DELETE FROM report_history_intervals")


def fill_history(url: str, *, hours: float) -> tuple[float, int]:
    """What the scheduler's report check does once a day settles: cache its facility history.
    Returns the wall time and the (day, interval length) pairs computed."""
    from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
    from gridlink.reports.history import fill_settled_days
    from gridlink.settings import GridlinkSettings

    settings = GridlinkSettings(database_url=url, facility_max_kw=10_000.0)
    engine = build_engine(url)
    now = START + timedelta(hours=hours, seconds=settings.report_settlement_delay_s)
    total = 0
    t0 = time.perf_counter()
    try:
        while True:
            with session_scope(build_sessionmaker(engine)) as session:
                done = fill_settled_days(session, now=now, settings=settings)
            if not done:
                return time.perf_counter() - t0, total
            total += done
    finally:
        engine.dispose()


def time_report(url: str, *, hours: float, interval_s: int) -> tuple[dict[str, float], str]:
    from gridlink.auth.principal import SYSTEM
    from gridlink.curtailments.schemas import CurtailmentCreate
    from gridlink.curtailments.service import create_curtailment
    from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
    from gridlink.reports import repository, service
    from gridlink.reports.compute import build_report
    from gridlink.reports.history import comparable_days
    from gridlink.reports.inputs import inputs_hash
    from gridlink.settings import GridlinkSettings

    settings = GridlinkSettings(database_url=url, facility_max_kw=10_000.0)
    engine = build_engine(url)
    factory = build_sessionmaker(engine)
    stages: dict[str, float] = {}
    try:
        with session_scope(factory) as session:
            if not repository.events_overlapping(
                session, start=START, end=START + timedelta(seconds=1)
            ):
                data = CurtailmentCreate(start=START, duration_s=hours * 3600, reduction_pct=30)
                create_curtailment(
                    session, data, actor=SYSTEM, now=START - timedelta(days=1), settings=settings
                )
            event_id = repository.events_overlapping(
                session, start=START, end=START + timedelta(seconds=1)
            )[0].id
        with session_scope(factory) as session:
            t0 = time.perf_counter()
            inputs = service.event_inputs(
                session, event_id, interval_s=interval_s, settings=settings
            )
            t1 = time.perf_counter()
            body = build_report(inputs)
            t2 = time.perf_counter()
            digest = inputs_hash(inputs)
            t3 = time.perf_counter()
            report, _ = service.store(
                session, inputs, trigger="request", actor=SYSTEM, now=datetime.now(UTC)
            )
            t4 = time.perf_counter()
        with session_scope(factory) as session:  # the two big reads, timed on their own
            t5 = time.perf_counter()
            repository.node_intervals(
                session, start=inputs.grid_start, interval_s=interval_s, count=inputs.interval_count
            )
            t6 = time.perf_counter()
            comparable_days(
                session,
                window_start=inputs.window_start,
                count=inputs.interval_count - inputs.event_start_index,
                interval_s=interval_s,
                settings=settings,
            )
            t7 = time.perf_counter()
        stages = {
            "inputs (SQL)": t1 - t0,
            "of which node-interval aggregation": t6 - t5,
            "of which comparable-day history": t7 - t6,
            "compute": t2 - t1,
            "inputs hash": t3 - t2,
            "store (hash + compute + insert)": t4 - t3,
        }
        stages["total (inputs + store)"] = (t1 - t0) + (t4 - t3)
        stages["cells"] = float(len(inputs.node_intervals))
        stages["delivered_model_kwh"] = float(body["totals"]["delivered_kwh"]["model"] or 0.0)
        stages["report_id"] = float(report.id)
        stages["digest_ok"] = float(digest == report.inputs_hash)
        content = report.content_hash
    finally:
        engine.dispose()
    return stages, content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--intervals", type=int, nargs="+", default=[300, 900])
    parser.add_argument(
        "--keep-db", metavar="NAME", help="keep the seeded database as NAME and reuse it"
    )
    args = parser.parse_args()
    database = (
        kept_database(args.keep_db)
        if args.keep_db
        else scratch_database_fresh("gridlink_bench_report")
    )
    with database as (url, fresh):
        if fresh:
            t0 = time.perf_counter()
            nodes, samples, rollups, minutes = seed(url, nodes=args.nodes, hours=args.hours)
            print(
                f"seeded {nodes} nodes, {samples:,} raw samples (1 s), {rollups:,} 1-min rollups, "
                f"{minutes:,} node-minute sums in {time.perf_counter() - t0:.0f} s; "
                f"load average {load_average()}"
            )
        else:
            print(f"reusing database {args.keep_db} (not re-seeded)")
        for interval_s in args.intervals:
            forget_reports(url, history=True)
            report_line(url, args, interval_s, "cold (no cached history)")
            seconds, pairs = fill_history(url, hours=args.hours)
            print(
                f"the scheduler's history fill (once per settled day): {pairs} day x interval "
                f"pairs in {seconds:.2f} s; load average {load_average()}"
            )
            for attempt in range(args.repeat):
                forget_reports(url, history=False)
                report_line(url, args, interval_s, f"run {attempt + 1}, history cached")


def report_line(url: str, args: argparse.Namespace, interval_s: int, label: str) -> None:
    stages, content = time_report(url, hours=args.hours, interval_s=interval_s)
    figures = ", ".join(
        f"{name} {seconds:.2f} s"
        for name, seconds in stages.items()
        if name not in ("cells", "delivered_model_kwh", "report_id", "digest_ok")
    )
    print(
        f"{args.hours:g}-h event, {args.nodes} nodes, {interval_s} s intervals, {label}: "
        f"{figures}; {int(stages['cells']):,} node-intervals, "
        f"model delivered {stages['delivered_model_kwh']:.1f} kWh, "
        f"inputs hash reproduced: {bool(stages['digest_ok'])}, "
        f"content hash {content[:16]}; load average {load_average()}"
    )


@contextmanager
def scratch_database_fresh(prefix: str) -> Iterator[tuple[str, bool]]:
    with scratch_database(prefix) as url:
        yield url, True


if __name__ == "__main__":
    main()
