"""SQL for nodes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.models.node import Node


def get(session: Session, node_id: int) -> Node | None:
    return session.get(Node, node_id)


def get_by_name(session: Session, name: str) -> Node | None:
    return session.scalars(select(Node).where(Node.name == name)).first()


def list_all(session: Session) -> list[Node]:
    return list(session.scalars(select(Node).order_by(Node.id)))
