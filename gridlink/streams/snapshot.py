"""One budget version as the streams send it: per node, the whole allocation trajectory.

The JSON of a node's trajectory is rendered once per version and shared by every stream of that
node (and cached per node), so fan-out to many subscribers costs one serialisation each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


class Segment(NamedTuple):
    start: datetime
    end: datetime
    power_w: float


@dataclass
class VersionSnapshot:
    version_id: int
    created_at: datetime
    segments: dict[int, list[Segment]]
    _rendered: dict[int, str] = field(default_factory=dict, repr=False)

    def trajectory(self, node_id: int) -> dict[str, Any]:
        """The node trajectory document (the same fields as the REST API's NodeTrajectory)."""
        return {
            "version_id": self.version_id,
            "node_id": node_id,
            "created_at": self.created_at.isoformat(),
            "segments": [
                {"start": s.start.isoformat(), "end": s.end.isoformat(), "power_w": s.power_w}
                for s in self.segments.get(node_id, [])
            ],
        }

    def trajectory_json(self, node_id: int) -> str:
        rendered = self._rendered.get(node_id)
        if rendered is None:
            rendered = json.dumps(self.trajectory(node_id), separators=(",", ":"))
            self._rendered[node_id] = rendered
        return rendered
