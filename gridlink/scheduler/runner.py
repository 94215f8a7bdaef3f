"""The gateway's scheduler: APScheduler timers over the persisted schedule, on the leader only.

The database is the source of truth. APScheduler holds only in-memory timers derived from the
pending ``schedule_jobs`` rows, rebuilt whenever leadership is gained, after every firing and
every change; so a restart (or a kill -9) loses nothing: the new leader re-reads the table, fires
the boundaries that passed while nobody was leading (coalesced into one recompute), and arms
timers for the rest.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from gridlink.budgets.events import BudgetPublisher
from gridlink.db.engine import session_scope
from gridlink.scheduler import housekeeping, repository
from gridlink.scheduler.boundaries import FireResult, fire_due, sync_boundaries
from gridlink.scheduler.budget_ops import BudgetOps
from gridlink.scheduler.clock import SystemClock, UTCClock
from gridlink.scheduler.leader import AdvisoryLockElector, Elector, SingleProcessElector
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)

BOUNDARY_JOB_PREFIX = "boundary:"


@dataclass(frozen=True)
class LeaderJob:
    """A periodic job that runs only while this process leads (e.g. the OpenADR poll)."""

    job_id: str
    func: Callable[[], object]
    interval_s: float


def default_owner() -> str:
    """Who claimed a row: host, process and a random suffix (pids repeat across restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def build_elector(
    database_url: str,
    *,
    on_elected: Callable[[], None],
    on_demoted: Callable[[], None],
    retry_s: float,
    name: str,
) -> Elector:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return AdvisoryLockElector(
            conninfo, on_elected=on_elected, on_demoted=on_demoted, retry_s=retry_s, name=name
        )
    return SingleProcessElector(on_elected, on_demoted)


class GatewayScheduler:
    """Boundary timers and housekeeping jobs, active while this process is the leader."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        ops: BudgetOps,
        publisher: BudgetPublisher,
        settings: GridlinkSettings,
        *,
        database_url: str,
        clock: UTCClock | None = None,
        owner: str | None = None,
        leader_jobs: Sequence[LeaderJob] = (),
    ) -> None:
        self._leader_jobs = tuple(leader_jobs)
        self._factory = factory
        self._ops = ops
        self._publisher = publisher
        self._settings = settings
        self._clock = clock or SystemClock()
        self.owner = owner or default_owner()
        self._lock = threading.Lock()
        self._aps: BackgroundScheduler | None = None
        self._sync_queued = False
        self._elector = build_elector(
            database_url,
            on_elected=self._on_elected,
            on_demoted=self._on_demoted,
            retry_s=settings.scheduler_leader_retry_s,
            name=self.owner,
        )

    @property
    def is_leader(self) -> bool:
        return self._elector.is_leader

    def start(self) -> None:
        self._elector.start()

    def stop(self) -> None:
        self._elector.stop()
        self._on_demoted()

    def notify_change(self, _version_id: int | None = None) -> None:
        """A budget version was published (here or on another replica): re-read the boundaries.

        Thread-safe and cheap; a no-op on followers. Notifications arriving while a re-sync is
        queued coalesce into it; one arriving while it runs queues the next, so none is lost.
        """
        with self._lock:
            aps = self._aps
            if aps is None or self._sync_queued:
                return
            self._sync_queued = True
        aps.add_job(self._requested_sync, id=f"sync-now-{secrets.token_hex(4)}")

    def _requested_sync(self) -> None:
        with self._lock:
            self._sync_queued = False
        self._sync_fire_and_arm()

    def pending_timers(self) -> list[datetime]:
        """The boundaries with an armed timer (for tests and diagnostics)."""
        with self._lock:
            aps = self._aps
        if aps is None:
            return []
        jobs = [j for j in aps.get_jobs() if j.id.startswith(BOUNDARY_JOB_PREFIX)]
        return sorted(datetime.fromisoformat(j.id.removeprefix(BOUNDARY_JOB_PREFIX)) for j in jobs)

    # -- leadership -------------------------------------------------------------------------------

    def _on_elected(self) -> None:
        aps = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(1),  # boundaries and syncs run one at a time
                "housekeeping": ThreadPoolExecutor(1),
                "integrations": ThreadPoolExecutor(1),  # VTN and price-file I/O
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        s = self._settings
        # The first run is at once (the start-up catch-up), then every sync interval. One
        # recurring job, not a one-off one: a one-off job removed by APScheduler while a quick
        # demotion shuts it down raised JobLookupError in its thread.
        aps.add_job(
            self._sync_fire_and_arm,
            "interval",
            seconds=s.scheduler_sync_interval_s,
            id="sync",
            next_run_time=datetime.now(UTC),
        )
        aps.add_job(
            self._node_status, "interval", seconds=s.node_status_interval_s, id="node-status"
        )
        aps.add_job(
            self._telemetry_retention,
            "interval",
            seconds=s.telemetry_housekeeping_interval_s,
            id="telemetry-retention",
            executor="housekeeping",
        )
        aps.add_job(
            self._reports,
            "interval",
            seconds=s.report_check_interval_s,
            id="reports",
            executor="housekeeping",
        )
        for job in self._leader_jobs:
            aps.add_job(job.func, id=f"{job.job_id}-now", executor="integrations")
            aps.add_job(
                job.func,
                "interval",
                seconds=job.interval_s,
                id=job.job_id,
                executor="integrations",
            )
        with self._lock:
            self._aps = aps
            self._sync_queued = False
        aps.start()

    def _on_demoted(self) -> None:
        with self._lock:
            aps, self._aps = self._aps, None
        if aps is None:
            return
        # APScheduler 3's shutdown(wait=True) waits for running jobs while holding its job-store
        # lock, and a running job that re-arms the timers (get_jobs/add_job) needs that lock: a
        # deadlock. Stop it without waiting, then wait for the running jobs with no lock held
        # (a job that touches the stopped scheduler only edits its pending list).
        aps.shutdown(wait=False)
        for executor in aps._executors.values():
            pool = getattr(executor, "_pool", None)
            if pool is not None:
                pool.shutdown(wait=True)  # let a running recompute commit or roll back

    # -- jobs -------------------------------------------------------------------------------------

    def _sync_fire_and_arm(self) -> None:
        s = self._settings
        now = self._clock.now()
        sync_boundaries(
            self._factory,
            self._ops,
            now=now,
            lookback_s=s.scheduler_catchup_s,
            lookahead_s=s.scheduler_lookahead_s,
        )
        self._fire(now)
        self._arm()

    def _on_boundary(self, due_at: datetime) -> None:
        early_s = (due_at - self._clock.now()).total_seconds()
        if 0 < early_s < 1:  # timers and the injected clock may disagree by a hair
            time.sleep(early_s)
        self._fire(self._clock.now())
        self._sync_and_arm()

    def _sync_and_arm(self) -> None:
        s = self._settings
        sync_boundaries(
            self._factory,
            self._ops,
            now=self._clock.now(),
            lookback_s=s.scheduler_catchup_s,
            lookahead_s=s.scheduler_lookahead_s,
        )
        self._arm()

    def _fire(self, now: datetime, force_reason: str | None = None) -> FireResult:
        return fire_due(
            self._factory,
            self._ops,
            self._publisher,
            now=now,
            owner=self.owner,
            force_reason=force_reason,
        )

    def _arm(self) -> None:
        """Make the boundary timers match the pending rows."""
        with session_scope(self._factory) as session:
            pending = repository.pending_due_times(session)
        with self._lock:
            aps = self._aps
        if aps is None:
            return
        wanted = {f"{BOUNDARY_JOB_PREFIX}{t.isoformat()}": t for t in pending}
        for job in aps.get_jobs():
            if job.id.startswith(BOUNDARY_JOB_PREFIX) and job.id not in wanted:
                job.remove()
        existing = {job.id for job in aps.get_jobs()}
        for job_id, due_at in wanted.items():
            if job_id not in existing:
                aps.add_job(self._on_boundary, "date", run_date=due_at, args=[due_at], id=job_id)

    def _node_status(self) -> None:
        now = self._clock.now()
        with session_scope(self._factory) as session:
            changed = housekeeping.refresh_node_status(session, now=now, settings=self._settings)
        if changed:
            log.info("%d node(s) changed status; recomputing the budget", changed)
            self._fire(now, force_reason=f"node status: {changed} node(s) changed")

    def _reports(self) -> None:
        from gridlink.reports.worker import check_reports

        check_reports(self._factory, now=self._clock.now(), settings=self._settings)

    def _telemetry_retention(self) -> None:
        with session_scope(self._factory) as session:
            housekeeping.run_telemetry_retention(
                session, now=self._clock.now(), settings=self._settings
            )
