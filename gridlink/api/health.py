"""Liveness and readiness."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from gridlink import __version__
from gridlink.api.deps import AppSettings, DbSession
from gridlink.db.schema_check import schema_problem

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    migrations: Literal["ok", "pending", "unknown"] = "unknown"
    detail: str | None = None
    version: str


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(session: DbSession, settings: AppSettings) -> Health | JSONResponse:
    """``ok`` when the API is up, the database answers and its schema is at this code's
    migration head; 503 otherwise (with what to do in ``detail``)."""
    try:
        session.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check: the database did not answer")
        body = Health(status="degraded", database="unreachable", version=__version__)
        return JSONResponse(status_code=503, content=body.model_dump())
    problem = schema_problem(session.connection(), settings.effective_database_url)
    if problem is not None:
        body = Health(
            status="degraded",
            database="ok",
            migrations="pending",
            detail=problem,
            version=__version__,
        )
        return JSONResponse(status_code=503, content=body.model_dump())
    return Health(status="ok", database="ok", migrations="ok", version=__version__)
