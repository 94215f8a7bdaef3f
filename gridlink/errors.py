"""The gateway's exception tree. The API maps these to HTTP status codes in one handler."""

from __future__ import annotations


class GridlinkError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigurationError(GridlinkError):
    """A setting is missing or invalid."""


class DatabaseError(GridlinkError):
    """The database could not be reached or migrated."""


class NotFoundError(GridlinkError):
    """A referenced entity does not exist (HTTP 404)."""

    def __init__(self, entity: str, entity_id: object) -> None:
        super().__init__(f"{entity} {entity_id} not found")
        self.entity = entity
        self.entity_id = entity_id


class InvalidInputError(GridlinkError):
    """Input broke a rule the schema alone cannot check (HTTP 422). Names the field and the rule."""

    def __init__(self, field: str, message: str, *, location: str = "body") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.location = location


class ConflictError(GridlinkError):
    """The request conflicts with the entity's current state (HTTP 409)."""


class AuthenticationError(GridlinkError):
    """No valid bearer token (HTTP 401 with ``WWW-Authenticate: Bearer``)."""


class PermissionDeniedError(GridlinkError):
    """A valid token whose role or node binding does not allow the request (HTTP 403)."""


class PlanningError(GridlinkError, ValueError):
    """The budget planner refused its input; the message names the field and what is allowed."""


class AllocationError(GridlinkError, ValueError):
    """The fleet allocator refused its input; the message names the field and what is allowed."""
