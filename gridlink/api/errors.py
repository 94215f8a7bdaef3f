"""One place that maps the GridlinkError tree to HTTP status codes."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

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


async def gridlink_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GridlinkError)
    code = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    if isinstance(exc, InvalidInputError):
        # Same shape as FastAPI's own validation errors: clients parse one format.
        detail: object = [
            {
                "type": "value_error",
                "loc": [exc.location, *exc.field.split(".")],
                "msg": exc.message,
            }
        ]
    else:
        detail = str(exc)
    return JSONResponse(status_code=code, content={"detail": detail}, headers=headers)


async def integrity_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A uniqueness race lost to a concurrent request (e.g. two registrations of one name)."""
    return JSONResponse(
        status_code=409,
        content={"detail": "conflicting concurrent write; retry the request"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(GridlinkError, gridlink_error_handler)
    app.add_exception_handler(IntegrityError, integrity_error_handler)
