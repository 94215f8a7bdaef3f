"""SQL for API tokens."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.models.auth import ApiToken


def get_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash)).first()


def get(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def list_all(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))
