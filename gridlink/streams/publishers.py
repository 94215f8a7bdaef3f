"""Budget publishers: what runs after the commit that created a budget version.

Both implement ``gridlink.budgets.events.BudgetPublisher``: endpoints and the scheduler call
``publisher.publish(version_id)`` once the version is committed. On PostgreSQL that is a
``NOTIFY gridlink_budget, '<id>'``: every replica (this one included) hears it on its listening
connection and feeds its in-process streams. On SQLite there is one process, so the version goes
straight to the local feed.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "gridlink_budget"


class VersionSink(Protocol):
    def publish_threadsafe(self, version_id: int) -> None: ...


class LocalPublisher:
    """Single-process fan-out: hand the version to the local feed (SQLite)."""

    def __init__(self, sink: VersionSink) -> None:
        self._sink = sink

    def publish(self, version_id: int) -> None:
        self._sink.publish_threadsafe(version_id)


class PgNotifyPublisher:
    """Cross-replica fan-out: NOTIFY on ``gridlink_budget`` (PostgreSQL)."""

    def __init__(self, engine: Engine, *, fallback: VersionSink | None = None) -> None:
        self._engine = engine
        self._fallback = fallback

    def publish(self, version_id: int) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": NOTIFY_CHANNEL, "payload": str(int(version_id))},
                )
                conn.commit()
        except Exception:
            # Other replicas catch up on their next connect or listener reconnect; at least
            # this one's streams get the version now.
            log.exception("NOTIFY of budget version %s failed", version_id)
            if self._fallback is not None:
                self._fallback.publish_threadsafe(version_id)
