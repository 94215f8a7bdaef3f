"""Leader election: exactly one gateway replica runs the scheduler.

On PostgreSQL the leader is whoever holds a session-level advisory lock
(``pg_try_advisory_lock``) on a dedicated connection, kept open for as long as it leads. The lock
dies with the connection, so a killed leader (kill -9, lost network) frees it and a follower,
retrying every few seconds, takes over. The leader pings its connection at the same period and
steps down when the ping fails. Two leaders may briefly overlap (the old one has not noticed yet);
that is harmless because firing is exactly-once at the row level (see ``boundaries.fire_due``).

On SQLite there is one process by construction: it is the leader.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Protocol

import psycopg

log = logging.getLogger(__name__)

# A fixed 63-bit key: "gridlink scheduler" leadership. Any value works; all replicas must agree.
LEADER_LOCK_KEY = 0x6772_6964_6C6E_6B01


class Elector(Protocol):
    @property
    def is_leader(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class SingleProcessElector:
    """The only process is the leader (SQLite)."""

    def __init__(self, on_elected: Callable[[], None], on_demoted: Callable[[], None]) -> None:
        self._on_elected = on_elected
        self._on_demoted = on_demoted
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    def start(self) -> None:
        self._leader = True
        self._on_elected()

    def stop(self) -> None:
        if self._leader:
            self._leader = False
            self._on_demoted()


class AdvisoryLockElector:
    """Leadership by PostgreSQL advisory lock, campaigned for in a background thread."""

    def __init__(
        self,
        conninfo: str,
        *,
        on_elected: Callable[[], None],
        on_demoted: Callable[[], None],
        retry_s: float = 3.0,
        lock_key: int = LEADER_LOCK_KEY,
        name: str = "gridlink",
    ) -> None:
        self._conninfo = conninfo
        self._on_elected = on_elected
        self._on_demoted = on_demoted
        self._retry_s = retry_s
        self._lock_key = lock_key
        self._name = name
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop campaigning; a leader steps down and releases the lock (closes its connection)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                if self._leader:
                    self._check_still_leader()
                else:
                    self._campaign()
            except Exception:  # never let the thread die: the next round retries
                log.exception("leader election round failed")
            if self._stop.wait(self._retry_s):
                break
        self._step_down("stopping")

    def _campaign(self) -> None:
        try:
            conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=5,
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                application_name=f"{self._name}-leader",
            )
        except psycopg.Error as err:
            log.warning("leader election: database unreachable: %s", err)
            return
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key,)).fetchone()
        if not (row and row[0]):
            conn.close()
            return
        self._conn = conn
        self._leader = True
        log.info("%s is now the scheduler leader", self._name)
        self._on_elected()

    def _check_still_leader(self) -> None:
        assert self._conn is not None
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as err:
            self._step_down(f"lock connection lost: {err}")

    def _step_down(self, why: str) -> None:
        # Stop scheduling first, then release the lock, so a graceful hand-over never overlaps.
        was_leader, self._leader = self._leader, False
        if was_leader:
            log.info("%s is no longer the scheduler leader (%s)", self._name, why)
            self._on_demoted()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
