"""In-process publish hook: tell subscribers a new budget version exists.

Endpoints publish AFTER the commit that created the version (``gridlink.api.deps.after_commit``)
so a subscriber that reads the version always finds it. The default publisher does nothing; the
streaming layer installs a real one on ``app.state.publisher`` in the app lifespan.
"""

from __future__ import annotations

from typing import Protocol


class BudgetPublisher(Protocol):
    def publish(self, version_id: int) -> None: ...


class NullPublisher:
    """Publishes nowhere (no stream subscribers configured)."""

    def publish(self, version_id: int) -> None:
        return None


class RecordingPublisher:
    """Keeps every published version id (tests and diagnostics)."""

    def __init__(self) -> None:
        self.published: list[int] = []

    def publish(self, version_id: int) -> None:
        self.published.append(version_id)
