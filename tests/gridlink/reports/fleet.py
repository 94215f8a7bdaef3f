"""Helpers to put a fleet, its telemetry and its events straight into the test database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth.principal import SYSTEM
from gridlink.curtailments.schemas import CurtailmentCreate, CurtailmentUpdate
from gridlink.curtailments.service import (
    cancel_curtailment,
    create_curtailment,
    update_curtailment,
)
from gridlink.db.engine import session_scope
from gridlink.models.audit import AuditEntry
from gridlink.models.event import Event
from gridlink.models.node import Node
from gridlink.models.report import Report
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import repository as telemetry_repository

# A node whose stock power rises from 1 kW idle to 5 kW at 1,000 tok/s.
STOCK_CURVE = [[0.0, 1000.0], [1000.0, 5000.0]]


def add_node(session: Session, name: str, **overrides: Any) -> Node:
    fields: dict[str, Any] = {
        "gpu_type": "H100-SXM",
        "gpu_count": 8,
        "gpu_min_cap_w": 200.0,
        "gpu_max_cap_w": 700.0,
        "min_power_w": 2000.0,
        "max_power_w": 6000.0,
        "idle_power_w": 400.0,
        "curve": [[2000.0, 500.0], [6000.0, 1000.0]],
        "stock_curve": STOCK_CURVE,
        **overrides,
    }
    node = Node(name=name, **fields)
    session.add(node)
    session.flush()
    return node


def add_samples(
    session: Session,
    node_id: int,
    start: datetime,
    end: datetime,
    *,
    period_s: float = 10.0,
    power_w: Callable[[datetime], float] | float = 3000.0,
    throughput_tok_s: Callable[[datetime], float] | float = 500.0,
    demand_tok_s: Callable[[datetime], float | None] | float | None = 500.0,
    qos_violation: Callable[[datetime], bool] | bool = False,
) -> int:
    """Samples every ``period_s`` in ``[start, end)``; each field a constant or a function of ts."""

    def value(field: Any, at: datetime) -> Any:
        return field(at) if callable(field) else field

    rows = []
    at = start
    while at < end:
        rows.append(
            {
                "node_id": node_id,
                "ts": at,
                "power_w": value(power_w, at),
                "throughput_tok_s": value(throughput_tok_s, at),
                "demand_tok_s": value(demand_tok_s, at),
                "qos_violation": value(qos_violation, at),
            }
        )
        at += timedelta(seconds=period_s)
    if rows:
        telemetry_repository.bulk_insert(session, rows)
    return len(rows)


def add_event(
    session: Session,
    settings: GridlinkSettings,
    start: datetime,
    duration_s: float,
    *,
    now: datetime,
    **signal: Any,
) -> int:
    data = CurtailmentCreate(start=start, duration_s=duration_s, **signal)
    result = create_curtailment(session, data, actor=SYSTEM, now=now, settings=settings)
    return int(result.event.id)


def change_event(
    session: Session, settings: GridlinkSettings, event_id: int, *, now: datetime, **fields: Any
) -> int:
    data = CurtailmentUpdate(**fields)
    result = update_curtailment(session, event_id, data, actor=SYSTEM, now=now, settings=settings)
    return int(result.event.id)


def cancel_event(session: Session, event_id: int, *, now: datetime) -> None:
    cancel_curtailment(session, event_id, actor=SYSTEM, now=now)


def wipe(factory: sessionmaker[Session]) -> None:
    """Delete what the report tests create (reports, audit entries, events, nodes), committed."""
    with session_scope(factory) as session:
        for model in (Report, AuditEntry, Event, Node):
            session.execute(delete(model))
