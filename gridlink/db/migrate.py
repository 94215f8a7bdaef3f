"""Alembic wrapper used by ``gridlink db`` and by the tests.

The migrations live in the repository's top-level ``migrations/`` folder; a wheel carries a copy
as ``gridlink/_migrations``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from gridlink.db.engine import build_engine
from gridlink.errors import DatabaseError


def migrations_dir() -> Path:
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if (packaged / "env.py").is_file():
        return packaged
    repo = Path(__file__).resolve().parents[2] / "migrations"
    if (repo / "env.py").is_file():
        return repo
    raise DatabaseError(f"migrations folder not found (looked in {packaged} and {repo})")


def alembic_config(database_url: str, *, configure_logging: bool = False) -> Config:
    """Alembic's config for ``database_url``. Logging is configured from alembic.ini only when
    asked (the CLI); library callers and tests keep their own logging."""
    folder = migrations_dir()
    ini = folder.parent / "alembic.ini"
    if not ini.is_file():
        ini = folder / "alembic.ini"
    config = Config(str(ini)) if ini.is_file() else Config()
    config.set_main_option("script_location", str(folder))
    # '%' must be escaped for ConfigParser interpolation.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = configure_logging
    return config


def upgrade(database_url: str, revision: str = "head", *, verbose: bool = False) -> None:
    command.upgrade(alembic_config(database_url, configure_logging=verbose), revision)


def downgrade(database_url: str, revision: str = "-1", *, verbose: bool = False) -> None:
    command.downgrade(alembic_config(database_url, configure_logging=verbose), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def current(database_url: str) -> str | None:
    engine = build_engine(database_url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()
