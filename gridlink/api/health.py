"""Liveness and readiness."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from gridlink import __version__
from gridlink.api.deps import DbSession

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    version: str


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(session: DbSession) -> Health | JSONResponse:
    """``ok`` when the API is up and the database answers; 503 otherwise."""
    try:
        session.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check: the database did not answer")
        body = Health(status="degraded", database="unreachable", version=__version__)
        return JSONResponse(status_code=503, content=body.model_dump())
    return Health(status="ok", database="ok", version=__version__)
