"""Is this database's schema the one this gridlink needs? Checked by the CLI before it serves or
writes (fail fast, naming the database and the fix) and by ``/healthz``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from gridlink.db.migrate import alembic_config

FIX = "run `gridlink db upgrade`"


@lru_cache
def head_revisions() -> frozenset[str]:
    """The head revision(s) of the migrations this code ships."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads())


def describe(url: str) -> str:
    """The database as a person finds it: a SQLite file's absolute path, else the URL (no
    password)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return f"SQLite file {Path(str(parsed.database)).resolve()}"
    return parsed.render_as_string(hide_password=True)


def missing_sqlite_file(url: str) -> str | None:
    """A message when ``url`` is a SQLite file that does not exist (opening it would create an
    empty database); None otherwise."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(str(parsed.database)).resolve()
    if path.exists():
        return None
    return (
        f"no gridlink database at {path} (GRIDLINK_DATA_DIR is relative to the current folder "
        f"{Path.cwd()}): run from the folder where you ran `gridlink db upgrade`, set "
        f"GRIDLINK_DATA_DIR or GRIDLINK_DATABASE_URL, or {FIX} here to create one"
    )


def schema_problem(connection: Connection, url: str) -> str | None:
    """None when the database is at this code's head revision; else what is wrong and the fix."""
    current = frozenset(MigrationContext.configure(connection).get_current_heads())
    heads = head_revisions()
    if current == heads:
        return None
    where = describe(url)
    if not current:
        return f"the database ({where}) has no gridlink schema: {FIX}"
    return (
        f"the database ({where}) is at revision {', '.join(sorted(current))}, this gridlink needs "
        f"{', '.join(sorted(heads))}: {FIX}"
    )
