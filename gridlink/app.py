"""FastAPI application factory. The engine and sessionmaker are built in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gridlink import __version__
from gridlink.api import health
from gridlink.db.engine import build_engine, build_sessionmaker
from gridlink.errors import GridlinkError
from gridlink.realtime import realtime_services
from gridlink.settings import GridlinkSettings, get_settings
from gridlink.streams import endpoints as streams


def create_app(settings: GridlinkSettings | None = None) -> FastAPI:
    """Build the gateway app. Nothing touches the database until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        engine = build_engine(cfg.effective_database_url, echo=cfg.db_echo)
        app.state.settings = cfg
        app.state.engine = engine
        app.state.sessionmaker = build_sessionmaker(engine)
        try:
            async with realtime_services(app, cfg, engine, app.state.sessionmaker):
                yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="gridlink",
        version=__version__,
        summary="Demand-response gateway for power-aware LLM serving fleets.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(streams.router)

    @app.exception_handler(GridlinkError)
    async def _gridlink_error(_request: Request, exc: GridlinkError) -> JSONResponse:
        return JSONResponse(status_code=500, content={"detail": str(exc)})

    return app
