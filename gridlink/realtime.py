"""The gateway's background machinery, started and stopped by the app lifespan.

- the allocation feed behind the node streams (one per process);
- on PostgreSQL, the LISTEN connection that brings budget versions published by any replica,
  and a NOTIFY publisher; on SQLite, a publisher that feeds the local streams directly;
- the scheduler (``GRIDLINK_SCHEDULER_ENABLED``), which only acts while this process leads.

``app.state.publisher`` is the publisher endpoints call after the commit that created a version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

import anyio
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gridlink.budgets.events import BudgetPublisher
from gridlink.openadr.jobs import integration_jobs
from gridlink.scheduler.budget_ops import ServiceBudgetOps
from gridlink.scheduler.runner import GatewayScheduler
from gridlink.settings import GridlinkSettings
from gridlink.streams.feed import AllocationFeed
from gridlink.streams.listener import PgNotifyListener
from gridlink.streams.publishers import LocalPublisher, PgNotifyPublisher


def libpq_conninfo(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def realtime_services(
    app: FastAPI,
    settings: GridlinkSettings,
    engine: Engine,
    factory: sessionmaker[Session],
) -> AsyncIterator[None]:
    feed = AllocationFeed(
        factory, queue_size=settings.stream_queue_size, heartbeat_s=settings.stream_heartbeat_s
    )
    await feed.start()
    app.state.allocation_feed = feed

    listener: PgNotifyListener | None = None
    publisher: BudgetPublisher
    if engine.dialect.name == "postgresql":
        listener = PgNotifyListener(
            libpq_conninfo(engine), feed, on_reconnect=feed.refresh_threadsafe
        )
        listener.start()
        publisher = PgNotifyPublisher(engine, fallback=feed)
    else:
        publisher = LocalPublisher(feed)
    app.state.publisher = publisher

    scheduler: GatewayScheduler | None = None
    closers = ExitStack()
    if settings.scheduler_enabled:
        scheduler = GatewayScheduler(
            factory,
            ServiceBudgetOps(settings),
            publisher,
            settings,
            database_url=engine.url.render_as_string(hide_password=False),
            leader_jobs=integration_jobs(factory, settings, publisher, closers),
        )
        feed.add_observer(scheduler.notify_change)
        scheduler.start()
    app.state.scheduler = scheduler
    try:
        yield
    finally:
        if scheduler is not None:
            await anyio.to_thread.run_sync(scheduler.stop)
        closers.close()
        if listener is not None:
            await anyio.to_thread.run_sync(listener.stop)
        await feed.stop()
