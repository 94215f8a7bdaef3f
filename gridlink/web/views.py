"""What the facility page shows, computed from plain data (no database, no clock inside).

A node's *mode* is derived from its latest sample and its allocation in force:

- ``infeasible``: its allocation is below the least it can draw (every GPU at its minimum cap
  plus idle power), or it draws more than 5 % (and 50 W) above its allocation;
- ``qos_risk``: it is pressing its allocation (>= 95 %) and its last sample reports a QoS
  violation or waiting requests;
- ``tracking``: otherwise; ``unknown`` without a recent sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from gridlink.curtailments.schemas import CurtailmentOut
from gridlink.models.event import EventStatus

OVER_FRAC = 1.05
OVER_MARGIN_W = 50.0
PRESSING_FRAC = 0.95


@dataclass(frozen=True)
class NodeRow:
    id: int
    name: str
    status: str
    gpu_type: str
    gpu_count: int
    power_w: float | None
    alloc_w: float | None
    max_power_w: float
    tok_per_j: float | None
    mode: str
    last_seen: str | None
    age_s: float | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def node_mode(
    *,
    power_w: float | None,
    alloc_w: float | None,
    min_power_w: float,
    qos_violation: bool,
    requests_waiting: int | None,
) -> str:
    if power_w is None:
        return "unknown"
    if alloc_w is not None:
        if alloc_w + 1e-6 < min_power_w:
            return "infeasible"
        if power_w > alloc_w * OVER_FRAC + OVER_MARGIN_W:
            return "infeasible"
        pressing = power_w >= PRESSING_FRAC * alloc_w
        if pressing and (qos_violation or (requests_waiting or 0) > 0):
            return "qos_risk"
    elif qos_violation:
        return "qos_risk"
    return "tracking"


def tokens_per_joule(power_w: float | None, throughput_tok_s: float | None) -> float | None:
    if power_w is None or throughput_tok_s is None or power_w <= 0:
        return None
    return throughput_tok_s / power_w


def age_s(last_seen: datetime | None, now: datetime) -> float | None:
    return None if last_seen is None else max(0.0, (now - last_seen).total_seconds())


@dataclass(frozen=True)
class EventGroups:
    upcoming: list[CurtailmentOut]
    active: list[CurtailmentOut]
    past: list[CurtailmentOut]
    versions: dict[tuple[str, str], list[CurtailmentOut]]
    sources: list[str]

    def older_versions(self, event: CurtailmentOut) -> list[CurtailmentOut]:
        return [
            v
            for v in self.versions.get((event.source.value, event.external_id), [])
            if v.id != event.id
        ]


def group_events(events: Iterable[CurtailmentOut]) -> EventGroups:
    """Current versions by status (upcoming soonest first, active, past newest first); every
    version kept by ``(source, external_id)`` so the page can show the history of each."""
    versions: dict[tuple[str, str], list[CurtailmentOut]] = {}
    current: list[CurtailmentOut] = []
    for event in events:
        versions.setdefault((event.source.value, event.external_id), []).append(event)
        if event.is_current:
            current.append(event)
    for chain in versions.values():
        chain.sort(key=lambda e: e.version, reverse=True)
    upcoming = sorted(
        (e for e in current if e.status is EventStatus.SCHEDULED), key=lambda e: e.start
    )
    active = sorted((e for e in current if e.status is EventStatus.ACTIVE), key=lambda e: e.start)
    past = sorted(
        (e for e in current if e.status in (EventStatus.COMPLETED, EventStatus.CANCELLED)),
        key=lambda e: e.end,
        reverse=True,
    )
    sources = sorted({e.source.value for e in current})
    return EventGroups(upcoming, active, past, versions, sources)


def signal_text(event: CurtailmentOut) -> str:
    if event.limit_kw is not None:
        return f"limit {event.limit_kw:g} kW"
    if event.reduction_kw is not None:
        return f"-{event.reduction_kw:g} kW"
    if event.reduction_pct is not None:
        return f"-{event.reduction_pct:g} %"
    return "-"
