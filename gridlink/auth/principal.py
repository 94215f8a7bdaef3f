"""Who is making a request (or a CLI/scheduler write): the subject of authorization and audit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """``role`` is a token role, or ``"system"`` for writes made by the CLI or the scheduler."""

    token_id: int | None
    role: str
    name: str
    node_id: int | None = None


SYSTEM = Principal(token_id=None, role="system", name="system")
