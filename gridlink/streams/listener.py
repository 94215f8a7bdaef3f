"""The process's one LISTEN connection on ``gridlink_budget`` (PostgreSQL).

A daemon thread holds a psycopg connection, LISTENs, and hands each payload (a version id) to the
feed. If the connection drops it reconnects with backoff and then asks the feed to re-read the
latest version, since notifications sent while it was away are lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from gridlink.streams.publishers import NOTIFY_CHANNEL, VersionSink

log = logging.getLogger(__name__)


class PgNotifyListener:
    def __init__(
        self,
        conninfo: str,
        sink: VersionSink,
        *,
        on_reconnect: Callable[[], None] | None = None,
        poll_s: float = 0.5,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._conninfo = conninfo
        self._sink = sink
        self._on_reconnect = on_reconnect
        self._poll_s = poll_s
        self._max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gridlink-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        backoff_s = 0.2
        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.connected.set()
                    backoff_s = 0.2
                    if not first and self._on_reconnect is not None:
                        self._on_reconnect()
                    first = False
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self._poll_s):
                            self._deliver(note.payload)
            except psycopg.Error as err:
                self.connected.clear()
                log.warning("budget LISTEN connection lost (%s); retrying in %.1fs", err, backoff_s)
                first = False
                if self._stop.wait(backoff_s):
                    break
                backoff_s = min(backoff_s * 2, self._max_backoff_s)
        self.connected.clear()

    def _deliver(self, payload: str) -> None:
        try:
            version_id = int(payload)
        except ValueError:
            log.warning("ignoring malformed %s payload %r", NOTIFY_CHANNEL, payload)
            return
        self._sink.publish_threadsafe(version_id)
