"""One rule for instants in the core: timezone-aware with a zero UTC offset, tagged ``UTC``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridlink.errors import PlanningError

__all__ = ["utc_datetime"]


def utc_datetime(value: object, field: str) -> datetime:
    """Return ``value`` tagged with ``datetime.UTC``; refuse naive or non-UTC datetimes.

    Naive datetimes are ambiguous and a non-zero offset means the caller skipped the conversion
    the rest of the gateway relies on, so both are errors naming ``field``.
    """
    if not isinstance(value, datetime):
        raise PlanningError(f"{field} must be a datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise PlanningError(f"{field} must be timezone-aware UTC, got a naive datetime {value}")
    if offset != timedelta(0):
        raise PlanningError(f"{field} must be timezone-aware UTC, got UTC offset {offset}")
    return value.replace(tzinfo=UTC)
