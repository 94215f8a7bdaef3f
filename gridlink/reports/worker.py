"""Scheduled reports and corrections in a short-lived child process.

A report over a fleet is a burst of small objects in the gateway (for 1,000 nodes and an event
of a few intervals, some 10^5: one per node and settlement interval, the node profiles, the
rows, the body) and of large buffers (its JSON body, the database driver's buffers for it). In
a process that lives for months beside thousands of open streams, such bursts leave both
Python's and the C allocator's arenas fragmented: the long-lived objects allocated while a
report was being built sit among the freed ones, and the arenas cannot be given back. The
version soak showed it (docs/scheduler-and-streams.md): the gateway's RSS rose in steps when
events ended and their reports were generated, and not otherwise.

So with ``report_isolation = "process"`` (the default) the scheduler's report check looks in
its own process whether any report or correction is due (a few small queries) and, only then,
runs :func:`gridlink.reports.scheduled.generate_due` in a fresh interpreter (``spawn``: no
forked copy of the gateway's threads and locks), with its own engine, and waits for it. All
that work's memory goes back to the system when the child exits. Nothing else changes: the
database is the source of truth, each report commits in its own transaction, and a child that
dies leaves its reports due for the next check, as a leader that dies does.
"""

from __future__ import annotations

import logging
import logging.config
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
from gridlink.reports.corrections import pending_corrections
from gridlink.reports.scheduled import due_reports, generate_due
from gridlink.settings import GridlinkSettings


def heavy_work_due(
    factory: sessionmaker[Session], *, now: datetime, settings: GridlinkSettings
) -> bool:
    """Whether a report or a correction is due: the work worth a child process."""
    with session_scope(factory) as session:
        if due_reports(session, now=now, settings=settings):
            return True
        due, _settled = pending_corrections(session, now=now, settings=settings)
        return bool(due)


def _generate_in_child(url: str, settings: GridlinkSettings, now: datetime) -> list[int]:
    """The child's whole life: its logging as the gateway's, its own engine, the check."""
    from gridlink.observability.logs import log_config

    logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
    engine = build_engine(
        url,
        echo=settings.db_echo,
        pool_recycle_s=settings.db_pool_recycle_s,
    )
    try:
        return generate_due(build_sessionmaker(engine), now=now, settings=settings)
    finally:
        engine.dispose()


def generate_due_in_child(url: str, settings: GridlinkSettings, *, now: datetime) -> list[int]:
    """Run :func:`gridlink.reports.scheduled.generate_due` on the database at ``url`` in a
    fresh child process and return the ids of the reports it stored. Blocks until the child
    exits; its errors are raised here (``BrokenProcessPool`` if it died)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_generate_in_child, url, settings, now).result()


def shared_url(factory: sessionmaker[Session]) -> str | None:
    """The URL another process can open the factory's database with; None for an in-memory
    SQLite database (only this process sees it)."""
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):
        return None
    url = bind.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def check_reports(
    factory: sessionmaker[Session], *, now: datetime, settings: GridlinkSettings
) -> list[int]:
    """The scheduler's report check: in a child process when heavy work is due and
    ``report_isolation`` is ``process`` (and the database is not an in-memory one), else in
    this one. Returns the new report ids."""
    url = shared_url(factory) if settings.report_isolation == "process" else None
    if url is not None and heavy_work_due(factory, now=now, settings=settings):
        return generate_due_in_child(url, settings, now=now)
    return generate_due(factory, now=now, settings=settings)


__all__ = ["check_reports", "generate_due_in_child", "heavy_work_due", "shared_url"]
