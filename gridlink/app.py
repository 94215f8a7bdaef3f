"""FastAPI application factory. The engine and sessionmaker are built in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridlink import __version__
from gridlink.api import errors, health, openapi
from gridlink.api.body_limit import BodyLimit
from gridlink.audit import endpoints as audit_endpoints
from gridlink.budgets import endpoints as budgets_endpoints
from gridlink.budgets.events import NullPublisher
from gridlink.curtailments import endpoints as curtailments_endpoints
from gridlink.db.engine import build_engine, build_sessionmaker
from gridlink.nodes import endpoints as nodes_endpoints
from gridlink.observability import install as install_observability
from gridlink.observability import watch_feed
from gridlink.openadr import endpoints as openadr_endpoints
from gridlink.prices import endpoints as prices_endpoints
from gridlink.realtime import realtime_services
from gridlink.reports import endpoints as reports_endpoints
from gridlink.settings import GridlinkSettings, get_settings
from gridlink.streams import endpoints as streams_endpoints
from gridlink.telemetry import endpoints as telemetry_endpoints
from gridlink.web import install as install_web
from gridlink.web import web_services


def create_app(settings: GridlinkSettings | None = None) -> FastAPI:
    """Build the gateway app. Nothing touches the database until the lifespan starts."""
    cfg = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(
            cfg.effective_database_url, echo=cfg.db_echo, pool_recycle_s=cfg.db_pool_recycle_s
        )
        app.state.engine = engine
        app.state.sessionmaker = build_sessionmaker(engine)
        try:
            async with (
                realtime_services(app, cfg, engine, app.state.sessionmaker),
                web_services(app, cfg),
            ):
                watch_feed(app)
                yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="gridlink",
        version=__version__,
        summary="Demand-response gateway for power-aware LLM serving fleets.",
        lifespan=lifespan,
        # /docs is served by gridlink.web from vendored assets (no CDN); ReDoc would need one.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = cfg
    # Bodies over the limit get a JSON 413: from Content-Length, or while the body streams in.
    app.add_middleware(BodyLimit, max_body_bytes=cfg.max_body_bytes)
    # The streams layer replaces this with its broadcaster in the lifespan.
    app.state.publisher = NullPublisher()
    app.include_router(health.router)
    app.include_router(curtailments_endpoints.router)
    app.include_router(budgets_endpoints.router)
    app.include_router(nodes_endpoints.router)
    app.include_router(telemetry_endpoints.router)
    app.include_router(audit_endpoints.router)
    app.include_router(streams_endpoints.router)
    app.include_router(reports_endpoints.router)
    app.include_router(openadr_endpoints.router)
    app.include_router(prices_endpoints.router)
    errors.install(app)
    openapi.document_errors(app)
    install_web(app)
    install_observability(app)
    return app
