"""API bearer tokens. Only the SHA-256 of a token is stored; the token itself is shown once."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gridlink.db.base import Base, utcnow
from gridlink.models.types import str_enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    NODE = "node"
    AUDITOR = "auditor"


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(
            "(role = 'node') = (node_id IS NOT NULL)", name="node_binding_matches_role"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(str_enum(Role, "token_role"))
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
