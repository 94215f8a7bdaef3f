"""One budget version as the streams send it: per node, the whole allocation trajectory.

A version is rendered once per process, not once per subscriber: each node's SSE ``allocation``
event is built the first time a stream of that node needs it and then shared, and timestamps
(the same few boundaries for every node) are formatted once per version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from gridlink.streams.sse import format_event


class Segment(NamedTuple):
    start: datetime
    end: datetime
    power_w: float


@dataclass
class VersionSnapshot:
    version_id: int
    created_at: datetime
    segments: dict[int, list[Segment]]
    _events: dict[int, bytes] = field(default_factory=dict, repr=False)
    _iso: dict[datetime, str] = field(default_factory=dict, repr=False)

    def trajectory(self, node_id: int) -> dict[str, Any]:
        """The node trajectory document (the same fields as the REST API's NodeTrajectory)."""
        return {
            "version_id": self.version_id,
            "node_id": node_id,
            "created_at": self._isoformat(self.created_at),
            "segments": [
                {
                    "start": self._isoformat(s.start),
                    "end": self._isoformat(s.end),
                    "power_w": s.power_w,
                }
                for s in self.segments.get(node_id, [])
            ],
        }

    def allocation_event(self, node_id: int) -> bytes:
        """The SSE ``allocation`` event of this node, id = version id; built once."""
        event = self._events.get(node_id)
        if event is None:
            data = json.dumps(self.trajectory(node_id), separators=(",", ":"))
            event = format_event(data, event="allocation", event_id=str(self.version_id))
            self._events[node_id] = event
        return event

    def prerender(self) -> None:
        """Build every allocated node's event now (off the event loop, in the loader thread)."""
        for node_id in self.segments:
            self.allocation_event(node_id)

    def _isoformat(self, instant: datetime) -> str:
        text = self._iso.get(instant)
        if text is None:
            text = self._iso[instant] = instant.isoformat()
        return text
