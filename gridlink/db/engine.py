"""Engine and session factory construction. Called from the app's lifespan and the CLI only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


DEFAULT_POOL_RECYCLE_S = 300.0
"""A pooled PostgreSQL connection older than this is closed and replaced when next checked out.

libpq keeps each connection's input and output buffers at the size of the largest message the
connection ever carried (a 2 MB row leaves about 3 MB allocated until the connection closes), so
a long-lived pool holds, per connection, the high-water mark of every report body and version
matrix it ever moved: RSS that only grows over hours. Replacing connections bounds that to the
messages of the last few minutes; a new connection on a local network costs milliseconds."""


def build_engine(
    url: str, *, echo: bool = False, pool_recycle_s: float = DEFAULT_POOL_RECYCLE_S
) -> Engine:
    """An engine for ``url``; for SQLite, creates the parent folder and turns on foreign keys;
    for PostgreSQL, checks connections before use and replaces them after ``pool_recycle_s``."""
    if pool_recycle_s <= 0:
        raise ValueError(f"pool_recycle_s must be > 0, got {pool_recycle_s}")
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_recycle"] = pool_recycle_s
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def build_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work outside a request: commits on success, rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
