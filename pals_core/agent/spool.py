"""The on-disk telemetry buffer: samples wait here until the gateway has them.

Every sample goes through the spool (one SQLite file, stdlib ``sqlite3``): the sender reads the
oldest samples of a node, posts them, and deletes them only once the gateway answered 2xx, so a
gateway that is down, a lost answer or an agent restart loses nothing (the gateway skips sample
ids it already has). Each node keeps at most ``max_samples``; past that the oldest are dropped
and counted (``dropped``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from pals_core.agent.telemetry import TelemetrySample
from pals_core.errors import ConfigurationError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    node TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_samples_node_seq ON samples (node, seq);
"""


class TelemetrySpool:
    """A bounded FIFO of samples per node, on disk (``":memory:"`` for a throwaway one)."""

    def __init__(self, path: str | Path, max_samples: int = 86_400) -> None:
        if max_samples < 1:
            raise ConfigurationError(f"max_samples must be >= 1, got {max_samples}")
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.max_samples = max_samples
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self.dropped: dict[str, int] = {}

    def append(self, batches: dict[str, Sequence[TelemetrySample]]) -> None:
        """Store each node's new samples (one transaction for all), dropping the oldest past
        the bound."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for node, samples in batches.items():
                    if not samples:
                        continue
                    before = self._count(node)
                    self._db.executemany(
                        "INSERT INTO samples (node, body) VALUES (?, ?)",
                        [(node, json.dumps(s.to_json())) for s in samples],
                    )
                    self._counts[node] = before + len(samples)
                    self._trim(node)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._counts.clear()
                raise

    def _count(self, node: str) -> int:
        count = self._counts.get(node)
        if count is None:
            row = self._db.execute("SELECT count(*) FROM samples WHERE node = ?", (node,))
            count = self._counts[node] = int(row.fetchone()[0])
        return count

    def _trim(self, node: str) -> None:
        excess = self._counts[node] - self.max_samples
        if excess <= 0:
            return
        self._db.execute(
            "DELETE FROM samples WHERE seq IN "
            "(SELECT seq FROM samples WHERE node = ? ORDER BY seq LIMIT ?)",
            (node, excess),
        )
        self._counts[node] -= excess
        self.dropped[node] = self.dropped.get(node, 0) + excess

    def oldest(self, node: str, limit: int) -> tuple[int, list[dict[str, object]]]:
        """Up to ``limit`` of ``node``'s oldest samples and the last one's sequence number."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM samples WHERE node = ? ORDER BY seq LIMIT ?", (node, limit)
            ).fetchall()
        if not rows:
            return 0, []
        return int(rows[-1][0]), [json.loads(body) for _seq, body in rows]

    def ack(self, node: str, up_to_seq: int) -> None:
        """The gateway has ``node``'s samples up to ``up_to_seq``: forget them."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM samples WHERE node = ? AND seq <= ?", (node, up_to_seq)
            )
            if node in self._counts:
                self._counts[node] = max(0, self._counts[node] - cursor.rowcount)

    def discard(self, node: str, up_to_seq: int, count: int) -> None:
        """Forget samples the gateway refused, counting them as dropped."""
        self.ack(node, up_to_seq)
        with self._lock:
            self.dropped[node] = self.dropped.get(node, 0) + count

    def count(self, node: str) -> int:
        with self._lock:
            return self._count(node)

    def close(self) -> None:
        with self._lock:
            self._db.close()
