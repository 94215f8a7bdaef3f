"""The facility operations page (``/``), its live feed and the locally served API docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gridlink.settings import GridlinkSettings


def install(app: FastAPI) -> None:
    """Mount the page, its ``/ui`` endpoints, ``/docs`` and the static files on ``app``."""
    from gridlink.web import docs, endpoints

    app.include_router(endpoints.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=endpoints.STATIC_DIR), name="static")


@asynccontextmanager
async def web_services(app: FastAPI, settings: GridlinkSettings) -> AsyncIterator[None]:
    """The page's live feed, started after the allocation feed (``realtime_services``)."""
    from gridlink.web.live import FacilityFeed

    feed = FacilityFeed(
        app.state.sessionmaker,
        settings,
        app.state.allocation_feed,
        period_s=settings.ui_refresh_s,
    )
    await feed.start()
    app.state.facility_feed = feed
    try:
        yield
    finally:
        await feed.stop()
