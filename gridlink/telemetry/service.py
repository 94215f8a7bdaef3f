"""Telemetry ingestion, facility power and the retention policy. Never commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from gridlink.audit import service as audit
from gridlink.auth.principal import Principal
from gridlink.errors import InvalidInputError
from gridlink.models.node import NodeStatus
from gridlink.models.telemetry import TelemetryRollup
from gridlink.nodes import service as nodes_service
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import repository
from gridlink.telemetry.repository import MinuteAggregate
from gridlink.telemetry.schemas import (
    DownsampleReport,
    FacilityPower,
    NodePower,
    TelemetryAccepted,
    TelemetryMinute,
    TelemetrySampleIn,
)

# Node clocks drift; a sample further ahead than this is refused rather than trusted.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Agents push every few seconds; a sample stored this long after its time is late (reports that
# covered it are corrected, gridlink/reports/corrections.py).
LATE_AFTER = timedelta(minutes=2)


def ingest(
    session: Session,
    node_id: int,
    samples: list[TelemetrySampleIn],
    *,
    actor: Principal,
    now: datetime,
    settings: GridlinkSettings,
) -> TelemetryAccepted:
    """Insert a batch in one statement; refuse the whole batch if any sample is invalid.
    Counts as a heartbeat; ``node_came_back`` says the node was offline until now (its
    caller recomputes the budget, since the set of nodes to allocate to changed)."""
    node = nodes_service.get_node(session, node_id)
    if len(samples) > settings.telemetry_max_batch:
        raise InvalidInputError(
            "samples",
            f"at most {settings.telemetry_max_batch} samples per request, got {len(samples)}",
        )
    for index, sample in enumerate(samples):
        if sample.ts > now + MAX_CLOCK_SKEW:
            raise InvalidInputError(
                f"samples.{index}.ts",
                f"{sample.ts.isoformat()} is more than {MAX_CLOCK_SKEW} ahead of the gateway "
                f"clock ({now.isoformat()})",
            )
    rows = [{"node_id": node_id, **sample.model_dump()} for sample in samples]
    repository.bulk_insert(session, rows)
    _note_late_samples(session, node_id, samples, now=now, settings=settings)
    came_back = nodes_service.status_at(node, now, settings) is NodeStatus.OFFLINE
    nodes_service.touch(node, now)
    first_ts = min(s.ts for s in samples)
    last_ts = max(s.ts for s in samples)
    audit.record(
        session,
        actor,
        "telemetry.ingest",
        "node",
        node_id,
        after={
            "samples": len(samples),
            "first_ts": first_ts.isoformat(),
            "last_ts": last_ts.isoformat(),
        },
        at=now,
    )
    return TelemetryAccepted(
        node_id=node_id,
        accepted=len(samples),
        first_ts=first_ts,
        last_ts=last_ts,
        node_came_back=came_back,
    )


def _note_late_samples(
    session: Session,
    node_id: int,
    samples: list[TelemetrySampleIn],
    *,
    now: datetime,
    settings: GridlinkSettings,
) -> None:
    """Samples stored more than :data:`LATE_AFTER` after their time may fall in a window already
    reported (a node replaying its spool after an outage): recorded with the samples, in the
    same transaction, so the reports' correction check regenerates what they change."""
    late = [s.ts for s in samples if s.ts <= now - LATE_AFTER]
    if late:
        repository.record_late_arrival(
            session,
            node_id=node_id,
            first_ts=min(late),
            last_ts=max(late),
            samples=len(late),
            stored_at=now,
        )


def facility_power(session: Session, *, now: datetime, settings: GridlinkSettings) -> FacilityPower:
    """Each node's latest sample within ``node_stale_after_s``, summed, plus the overhead."""
    since = now - timedelta(seconds=settings.node_stale_after_s)
    latest = repository.latest_per_node(session, since=since, until=now)
    gpu_kw = sum(s.power_w for s in latest) / 1000.0
    return FacilityPower(
        at=now,
        facility_power_kw=gpu_kw + settings.facility_overhead_kw,
        gpu_power_kw=gpu_kw,
        overhead_kw=settings.facility_overhead_kw,
        nodes_reporting=len(latest),
        nodes=[NodePower(node_id=s.node_id, power_w=s.power_w, ts=s.ts) for s in latest],
    )


def measured_facility_kw(
    session: Session, *, now: datetime, window_s: float, overhead_kw: float
) -> float | None:
    """Average facility power over the window: overhead plus each reporting node's average.
    None when no node reported in the window."""
    stats = repository.window_stats(session, since=now - timedelta(seconds=window_s), until=now)
    if not stats:
        return None
    return overhead_kw + sum(s.power_w_avg for s in stats) / 1000.0


def _minute_floor(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def downsample_and_prune(
    session: Session, now: datetime, settings: GridlinkSettings
) -> DownsampleReport:
    """Roll raw samples older than the raw retention up into 1-minute averages, delete them,
    and delete rollups older than the rollup retention.

    The cutoff is floored to a whole minute so every rolled-up minute is complete. A sample that
    arrives late for a minute already rolled up is merged into that rollup (weighted by sample
    count), so running this twice, or after late data, never double counts. The scheduler calls
    it periodically; it never commits.
    """
    cutoff = _minute_floor(now - timedelta(days=settings.telemetry_raw_retention_days))
    aggregates = repository.minute_aggregates_before(session, cutoff)
    written = 0
    rolled = 0
    if aggregates:
        existing = repository.rollups_between(
            session,
            first=min(a.bucket_start for a in aggregates),
            last=max(a.bucket_start for a in aggregates),
        )
        for agg in aggregates:
            rolled += agg.sample_count
            current = existing.get((agg.node_id, agg.bucket_start))
            if current is None:
                session.add(
                    TelemetryRollup(
                        node_id=agg.node_id,
                        bucket_start=agg.bucket_start,
                        sample_count=agg.sample_count,
                        power_w_avg=agg.power_w_avg,
                        power_w_max=agg.power_w_max,
                        throughput_tok_s_avg=agg.throughput_tok_s_avg,
                        power_cap_w_avg=agg.power_cap_w_avg,
                        qos_violation_count=agg.qos_violation_count,
                    )
                )
            else:
                n_old, n_new = current.sample_count, agg.sample_count
                total = n_old + n_new

                def mean(old: float, new: float, n_old: int = n_old, n_new: int = n_new) -> float:
                    return (old * n_old + new * n_new) / (n_old + n_new)

                current.power_w_avg = mean(current.power_w_avg, agg.power_w_avg)
                current.throughput_tok_s_avg = mean(
                    current.throughput_tok_s_avg, agg.throughput_tok_s_avg
                )
                if current.power_cap_w_avg is None or agg.power_cap_w_avg is None:
                    current.power_cap_w_avg = current.power_cap_w_avg or agg.power_cap_w_avg
                else:
                    current.power_cap_w_avg = mean(current.power_cap_w_avg, agg.power_cap_w_avg)
                current.power_w_max = max(current.power_w_max, agg.power_w_max)
                current.qos_violation_count += agg.qos_violation_count
                current.sample_count = total
            written += 1
        session.flush()
    raw_deleted = repository.delete_raw_before(session, cutoff)
    rollup_cutoff = now - timedelta(days=settings.telemetry_rollup_retention_days)
    rollups_deleted = repository.delete_rollups_before(session, rollup_cutoff)
    minutes_deleted = repository.delete_minutes_before(session, rollup_cutoff)
    return DownsampleReport(
        cutoff=cutoff,
        raw_rolled_up=rolled,
        rollups_written=written,
        raw_deleted=raw_deleted,
        rollups_deleted=rollups_deleted,
        minutes_deleted=minutes_deleted,
    )


MAX_HISTORY = timedelta(days=7)


def history(
    session: Session, node_id: int, *, since: datetime, until: datetime
) -> list[TelemetryMinute]:
    """Per-minute history of one node over ``[since, until)`` (at most :data:`MAX_HISTORY`):
    raw samples where they are still kept, rollups for older minutes."""
    if until <= since:
        raise InvalidInputError("until", "must be after since", location="query")
    if until - since > MAX_HISTORY:
        raise InvalidInputError(
            "until", f"the window may span at most {MAX_HISTORY.days} days", location="query"
        )
    nodes_service.get_node(session, node_id)
    minutes = {
        r.bucket_start: _minute(r, "rollup")
        for r in repository.rollups_for_node(session, node_id, since=since, until=until)
    }
    for m in repository.node_minutes(session, node_id, since=since, until=until):
        minutes[m.bucket_start] = _minute(m, "raw")  # raw samples, where kept, win
    return [minutes[k] for k in sorted(minutes)]


def _minute(
    row: MinuteAggregate | TelemetryRollup, source: Literal["raw", "rollup"]
) -> TelemetryMinute:
    return TelemetryMinute(
        minute=row.bucket_start,
        source=source,
        samples=row.sample_count,
        power_w_avg=row.power_w_avg,
        power_w_max=row.power_w_max,
        throughput_tok_s_avg=row.throughput_tok_s_avg,
        power_cap_w_avg=row.power_cap_w_avg,
        qos_violations=row.qos_violation_count,
    )
