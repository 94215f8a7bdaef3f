"""Shared fixtures: databases on SQLite and PostgreSQL, migrated with Alembic, one rolled-back
transaction per test.

PostgreSQL: the server at ``GRIDLINK_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). Each test run creates its own databases and
drops them at the end. When the server is unreachable the PostgreSQL tests skip, unless ``CI`` is
set, where that is a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gridlink.db import migrate
from gridlink.db.engine import build_engine

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


def _postgres_server_url() -> str:
    return os.environ.get("GRIDLINK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlalchemy_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = _postgres_server_url()
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        reason = f"PostgreSQL unreachable at {make_url(url).render_as_string()}: {err}".strip()
        reason = reason.splitlines()[0]
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so the PostgreSQL tests must run)")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def make_database(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], str]]:
    """A factory of fresh, empty databases: ``make_database("sqlite" | "postgresql") -> URL``."""
    created: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("sqlite") / f"gridlink_{secrets.token_hex(4)}.db"
            return f"sqlite:///{Path(path).as_posix()}"
        if backend != "postgresql":
            raise ValueError(f"unknown backend {backend!r}")
        server = request.getfixturevalue("postgres_server_url")
        name = f"gridlink_test_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(_libpq_url(server), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return _sqlalchemy_url(make_url(server).set(database=name).render_as_string(False))

    yield make

    if created:
        server = _postgres_server_url()
        with psycopg.connect(_libpq_url(server), autocommit=True) as conn:
            for name in created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, make_database: Callable[[str], str]) -> str:
    """A database of each backend, migrated to head once per test session."""
    url = make_database(request.param)
    migrate.upgrade(url)
    return url


def _sqlite_real_transactions(engine: Engine) -> None:
    """pysqlite defers BEGIN until the first write, so a SAVEPOINT issued first becomes the
    outermost transaction and its RELEASE commits for good: a test that commits would leak its
    rows into the next test. Emit BEGIN ourselves (the recipe from SQLAlchemy's SQLite docs)."""

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = build_engine(database_url)
    if eng.dialect.name == "sqlite":
        _sqlite_real_transactions(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test, whatever it commits."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


# -- reporting: say how many PostgreSQL tests really ran ------------------------------------------

_pg_outcomes: dict[str, int] = {"passed": 0, "failed": 0, "skipped": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "postgresql" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _pg_outcomes[report.outcome] = _pg_outcomes.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    total = sum(_pg_outcomes.values())
    if total:
        terminalreporter.write_line(
            f"PostgreSQL tests: {_pg_outcomes['passed']} ran and passed, "
            f"{_pg_outcomes['failed']} failed, {_pg_outcomes['skipped']} skipped "
            f"(server {make_url(_postgres_server_url()).render_as_string()})"
        )
