"""SQL for nodes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from gridlink.models.node import Node

PlanningRow = tuple[int, float, float, int, str]  # id, min_w, max_w, tier, curve JSON


def get(session: Session, node_id: int) -> Node | None:
    return session.get(Node, node_id)


def get_by_name(session: Session, name: str) -> Node | None:
    return session.scalars(select(Node).where(Node.name == name)).first()


def list_all(session: Session) -> list[Node]:
    return list(session.scalars(select(Node).order_by(Node.id)))


def planning_rows(session: Session, *, heard_since: datetime) -> list[PlanningRow]:
    """What the planner needs of every node heard from since ``heard_since`` (not offline), as
    plain rows in id order: no ORM objects for a fleet of thousands."""
    stmt = (
        select(
            Node.id,
            Node.min_power_w,
            Node.max_power_w,
            Node.flexibility_tier,
            cast(Node.curve, Text),  # as JSON text: nodes of one model share their curve
        )
        .where(Node.last_seen_at >= heard_since)
        .order_by(Node.id)
    )
    return [(r[0], r[1], r[2], r[3], r[4] or "[]") for r in session.execute(stmt)]
