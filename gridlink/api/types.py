"""Bounded input types shared by every domain's schemas and endpoints.

Inputs that a client controls never reach the database or datetime arithmetic unbounded:
- ``ApiDatetime``: an ISO 8601 string with an offset (any offset; converted to UTC), between
  :data:`EARLIEST` and :data:`LATEST`. Numbers are refused (``0.5`` is not a time).
- ``ApiDate``: an ISO 8601 date in the same range.
- ``Id`` / ``BigId``: a path or query id within PostgreSQL's ``integer`` / ``bigint`` range.
- ``Offset``: a paging offset within ``integer`` range.
- ``SafeText``: text without NUL characters or lone surrogates (neither can be stored).
- ``FINITE``: model config refusing NaN and Infinity in every float field.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ConfigDict, Field

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1

FINITE = ConfigDict(extra="forbid", allow_inf_nan=False)
"""Request bodies: unknown fields and non-finite numbers are refused."""


_SPACED_OFFSET = re.compile(r"(T[0-9:.]+) ([0-9]{2}:?[0-9]{2})$")


def _text_only(value: Any) -> Any:
    if isinstance(value, int | float):  # bool is an int too
        raise ValueError("give an ISO 8601 string with a UTC offset, not a number")
    if isinstance(value, str):
        # An unescaped "+05:00" in a query string arrives as " 05:00": read it as meant.
        value = _SPACED_OFFSET.sub(r"\1+\2", value.strip())
    return value


def _in_range(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError(
            f"must be from {EARLIEST.date().isoformat()} to before {LATEST.date().isoformat()}"
        )
    return value


def _date_in_range(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(
            f"must be from {EARLIEST.date().isoformat()} to before {LATEST.date().isoformat()}"
        )
    return value


# The range, as the document can say it: a year 2000-2199 (``format: date-time`` says the rest).
# Only documented (json_schema_extra), not checked as text: ``_in_range`` checks the instant.
YEAR_PATTERN = "^2[01][0-9]{2}-"

ApiDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_text_only),
    AfterValidator(_in_range),
    Field(
        description="ISO 8601 with an offset (converted to UTC), from 2000-01-01 to before "
        "2200-01-01.",
        json_schema_extra={"pattern": YEAR_PATTERN},
    ),
]
ApiDate = Annotated[
    date,
    BeforeValidator(_text_only),
    AfterValidator(_date_in_range),
    Field(
        description="ISO 8601 date, from 2000-01-01 to before 2200-01-01.",
        json_schema_extra={"pattern": YEAR_PATTERN},
    ),
]


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError("must be valid Unicode (no lone surrogates)") from err
    return value


SafeText = Annotated[str, AfterValidator(_storable)]

Id = Annotated[int, Path(ge=1, le=INT4_MAX, description="An id (1 to 2**31 - 1).")]
BigId = Annotated[int, Path(ge=1, le=INT8_MAX, description="An id (1 to 2**63 - 1).")]
Offset = Annotated[int, Query(ge=0, le=INT4_MAX)]
BeforeId = Annotated[
    int | None, Query(ge=1, le=INT4_MAX, description="Page backwards from this id.")
]
BigBeforeId = Annotated[
    int | None, Query(ge=1, le=INT8_MAX, description="Page backwards from this id.")
]
