"""One place that maps errors to HTTP responses.

Every 422 has one shape, FastAPI's ``{"detail": [{"type", "loc", "msg"}]}``, whether the schema,
a service rule or the planner refused the input; the other errors are ``{"detail": "<message>"}``.
The input itself is never echoed back (it may not even be serialisable: NaN, deep nesting).
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.types import ExceptionHandler

from gridlink.errors import (
    AllocationError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    DatabaseError,
    GridlinkError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PlanningError,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[GridlinkError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
    (PlanningError, 422),
    (AllocationError, 422),
    (DatabaseError, 503),
    (ConfigurationError, 500),
)


def status_for(exc: GridlinkError) -> int:
    for cls, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return code
    return 500


def validation_detail(loc: list[str | int], msg: str, kind: str = "value_error") -> list[Any]:
    return [{"type": kind, "loc": loc, "msg": msg}]


async def gridlink_error_handler(_request: Request, exc: GridlinkError) -> JSONResponse:
    code = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    detail: object
    if isinstance(exc, InvalidInputError):
        detail = validation_detail([exc.location, *exc.field.split(".")], exc.message)
    elif code == 422:
        detail = validation_detail(["body"], str(exc))
    else:
        detail = str(exc)
    return JSONResponse(status_code=code, content={"detail": detail}, headers=headers)


def _plain(value: object) -> object:
    """A JSON-safe copy of an error context value."""
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


async def request_validation_handler(
    _request: Request, exc: RequestValidationError
) -> JSONResponse:
    """FastAPI's validation errors without the offending input (never echoed back)."""
    detail = []
    for error in exc.errors():
        item: dict[str, Any] = {
            "type": str(error.get("type", "value_error")),
            "loc": [_plain(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "invalid input")),
        }
        if isinstance(error.get("ctx"), dict):
            item["ctx"] = {str(k): _plain(v) for k, v in error["ctx"].items()}
        detail.append(item)
    return JSONResponse(status_code=422, content={"detail": detail})


async def integrity_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A uniqueness race lost to a concurrent request (e.g. two registrations of one name)."""
    return JSONResponse(
        status_code=409,
        content={"detail": "conflicting concurrent write; retry the request"},
    )


async def data_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A value the database refused (out of range, unstorable text) that no bound caught."""
    log.warning("database refused a value: %s", exc)
    detail = validation_detail(["body"], "a value is out of the range the database can store")
    return JSONResponse(status_code=422, content={"detail": detail})


def install(app: FastAPI) -> None:
    # Starlette types every handler as taking any Exception, but calls each one only with an
    # instance of the class it is registered for: what these handlers' signatures say.
    app.add_exception_handler(GridlinkError, cast(ExceptionHandler, gridlink_error_handler))
    app.add_exception_handler(
        RequestValidationError, cast(ExceptionHandler, request_validation_handler)
    )
    app.add_exception_handler(IntegrityError, integrity_error_handler)
    app.add_exception_handler(DataError, data_error_handler)
