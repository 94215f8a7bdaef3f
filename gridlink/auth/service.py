"""Token creation and authentication.

A token is 32 random bytes (URL-safe base64) behind a ``glk_`` prefix. Only its SHA-256 is
stored: a leaked database does not leak usable tokens, and because the token has 256 bits of
entropy a fast hash is enough (no password stretching needed). Authentication looks the hash up,
so no comparison ever runs over secret bytes character by character.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from gridlink.audit import service as audit
from gridlink.auth import repository
from gridlink.auth.principal import Principal
from gridlink.errors import InvalidInputError, NotFoundError
from gridlink.models.auth import ApiToken, Role
from gridlink.models.node import Node, NodeStatus

TOKEN_PREFIX = "glk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    *,
    role: Role,
    name: str,
    node_id: int | None,
    actor: Principal,
    now: datetime,
) -> tuple[str, ApiToken]:
    """Store a new token; returns ``(plaintext, row)``. The plaintext is never stored."""
    if role is Role.NODE:
        if node_id is None:
            raise InvalidInputError("node_id", "a node token must be bound to a node (--node-id)")
        if session.get(Node, node_id) is None:
            raise NotFoundError("node", node_id)
    elif node_id is not None:
        raise InvalidInputError("node_id", f"only node tokens are bound to a node, not {role}")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name, role=role, node_id=node_id, token_hash=hash_token(plaintext), created_at=now
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "token.create",
        "api_token",
        row.id,
        after={"name": name, "role": role.value, "node_id": node_id},
        at=now,
    )
    return plaintext, row


def enrol_node(
    session: Session, *, name: str, actor: Principal, now: datetime
) -> tuple[str, ApiToken, bool]:
    """One step to let a node join: the node named ``name`` (created as a placeholder when new:
    offline, no allocation, until it registers its real spec with this token) and a node token
    bound to it. Returns ``(plaintext, row, node_created)``."""
    from gridlink.nodes.repository import get_by_name
    from gridlink.nodes.schemas import NodeRegister

    NodeRegister.model_validate(  # the same name rule as registration
        {
            "name": name,
            "gpu_type": "pending",
            "gpu_count": 1,
            "gpu_min_cap_w": 1,
            "gpu_max_cap_w": 1,
        }
    )
    node = get_by_name(session, name)
    created = node is None
    if node is None:
        node = Node(
            name=name,
            gpu_type="pending",
            gpu_count=1,
            min_power_w=0.0,
            max_power_w=0.0,
            last_seen_at=None,
            status=NodeStatus.OFFLINE,
            created_at=now,
            updated_at=now,
        )
        session.add(node)
        session.flush()
        audit.record(session, actor, "node.enrol", "node", node.id, after={"name": name}, at=now)
    plaintext, row = create_token(
        session, role=Role.NODE, name=f"node-{name}", node_id=node.id, actor=actor, now=now
    )
    return plaintext, row, created


def revoke_token(session: Session, token_id: int, *, actor: Principal, now: datetime) -> ApiToken:
    row = repository.get(session, token_id)
    if row is None:
        raise NotFoundError("token", token_id)
    if row.revoked_at is None:
        row.revoked_at = now
        audit.record(
            session,
            actor,
            "token.revoke",
            "api_token",
            row.id,
            after={"revoked_at": now.isoformat()},
            at=now,
        )
    return row


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal for ``token``, or None when it is unknown or revoked."""
    digest = hash_token(token)
    row = repository.get_by_hash(session, digest)
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.token_hash, digest):  # defence in depth; lookup was by hash
        return None
    return Principal(token_id=row.id, role=row.role.value, name=row.name, node_id=row.node_id)
