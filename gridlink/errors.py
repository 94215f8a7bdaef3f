"""The gateway's exception tree. The API maps these to HTTP status codes in one handler."""

from __future__ import annotations


class GridlinkError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigurationError(GridlinkError):
    """A setting is missing or invalid."""


class DatabaseError(GridlinkError):
    """The database could not be reached or migrated."""


class PlanningError(GridlinkError, ValueError):
    """The budget planner refused its input; the message names the field and what is allowed."""


class AllocationError(GridlinkError, ValueError):
    """The fleet allocator refused its input; the message names the field and what is allowed."""
