"""The gateway's exception tree. The API maps these to HTTP status codes in one handler."""

from __future__ import annotations


class GridlinkError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigurationError(GridlinkError):
    """A setting is missing or invalid."""


class DatabaseError(GridlinkError):
    """The database could not be reached or migrated."""
