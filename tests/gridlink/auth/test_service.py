"""Tokens: stored hashed, bound to nodes, revocable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.auth.principal import SYSTEM
from gridlink.auth.service import authenticate, create_token, hash_token, revoke_token
from gridlink.errors import InvalidInputError, NotFoundError
from gridlink.models.auth import ApiToken, Role

NOW = datetime(2026, 7, 1, tzinfo=UTC)


def test_only_the_hash_is_stored(db_session: Session) -> None:
    plaintext, row = create_token(
        db_session, role=Role.AUDITOR, name="aud", node_id=None, actor=SYSTEM, now=NOW
    )
    assert plaintext.startswith("glk_") and len(plaintext) > 40
    stored = db_session.scalars(select(ApiToken.token_hash)).all()
    assert stored == [hash_token(plaintext)] and plaintext not in stored
    principal = authenticate(db_session, plaintext)
    assert principal is not None and principal.role == "auditor" and principal.token_id == row.id
    assert authenticate(db_session, plaintext + "x") is None
    revoke_token(db_session, row.id, actor=SYSTEM, now=NOW)
    assert authenticate(db_session, plaintext) is None


def test_node_binding_rules(db_session: Session) -> None:
    with pytest.raises(InvalidInputError, match="node_id"):
        create_token(db_session, role=Role.NODE, name="n", node_id=None, actor=SYSTEM, now=NOW)
    with pytest.raises(NotFoundError, match="node 77"):
        create_token(db_session, role=Role.NODE, name="n", node_id=77, actor=SYSTEM, now=NOW)
    with pytest.raises(InvalidInputError, match="only node tokens"):
        create_token(db_session, role=Role.ADMIN, name="a", node_id=1, actor=SYSTEM, now=NOW)
