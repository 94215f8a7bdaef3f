"""The role matrix: which roles may do what. docs/gateway-api.md shows it as a table, and the
role-matrix test checks every endpoint against that table.

Node tokens are also bound to one node: for the node-scoped permissions the endpoint checks that
the path's node is the token's own (``ensure_own_node``).
"""

from __future__ import annotations

import enum

from gridlink.auth.principal import Principal
from gridlink.errors import PermissionDeniedError
from gridlink.models.auth import Role


class Permission(enum.StrEnum):
    CURTAILMENTS_READ = "curtailments:read"
    CURTAILMENTS_WRITE = "curtailments:write"
    TIMELINE_READ = "timeline:read"
    NODES_LIST = "nodes:list"
    NODE_REGISTER = "node:register"  # node-scoped
    NODE_READ = "node:read"  # node-scoped
    TELEMETRY_WRITE = "telemetry:write"  # node-scoped
    FACILITY_READ = "facility:read"
    AUDIT_READ = "audit:read"
    REPORTS_READ = "reports:read"
    REPORTS_GENERATE = "reports:generate"


_READERS = frozenset({Role.ADMIN, Role.MANAGER, Role.AUDITOR})

ROLE_MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.CURTAILMENTS_READ: _READERS,
    Permission.CURTAILMENTS_WRITE: frozenset({Role.ADMIN, Role.MANAGER}),
    Permission.TIMELINE_READ: _READERS,
    Permission.NODES_LIST: _READERS,
    Permission.NODE_REGISTER: frozenset({Role.ADMIN, Role.NODE}),
    Permission.NODE_READ: _READERS | {Role.NODE},
    Permission.TELEMETRY_WRITE: frozenset({Role.ADMIN, Role.NODE}),
    Permission.FACILITY_READ: _READERS,
    Permission.AUDIT_READ: frozenset({Role.ADMIN, Role.AUDITOR}),
    Permission.REPORTS_READ: _READERS,
    Permission.REPORTS_GENERATE: frozenset({Role.ADMIN}),
}


def check(principal: Principal, permission: Permission) -> None:
    if principal.role not in {r.value for r in ROLE_MATRIX[permission]}:
        allowed = ", ".join(sorted(r.value for r in ROLE_MATRIX[permission]))
        raise PermissionDeniedError(
            f"role {principal.role!r} may not {permission.value} (allowed: {allowed})"
        )


def ensure_own_node(principal: Principal, node_id: int) -> None:
    """A node token reaches only its own node; other roles pass (their role was checked)."""
    if principal.role == Role.NODE and principal.node_id != node_id:
        raise PermissionDeniedError(
            f"this node token is bound to node {principal.node_id}, not node {node_id}"
        )
