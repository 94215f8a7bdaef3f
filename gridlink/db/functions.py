"""SQL functions that each dialect spells its own way (PostgreSQL, and SQLite for unit tests).

A function is a subclass of :class:`DialectFunction` naming its result type and its SQL per
dialect (``{}`` stands for the argument); one compile hook renders them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Float
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement

from gridlink.db.base import UTCDateTime


class DialectFunction[T](FunctionElement[T]):
    """A one-argument SQL function written per dialect in ``sql``."""

    inherit_cache = True
    sql: ClassVar[dict[str, str]] = {}


@compiles(DialectFunction)
def _compile(element: DialectFunction[Any], compiler: SQLCompiler, **kw: Any) -> str:
    dialect = compiler.dialect.name
    template = element.sql.get(dialect)
    if template is None:
        raise CompileError(
            f"{element.name}() has no SQL for the {dialect} dialect; "
            f"known: {', '.join(sorted(element.sql))}"
        )
    return template.format(compiler.process(element.clauses, **kw))


class minute_floor(DialectFunction[datetime]):
    """``ts`` truncated to its minute."""

    type = UTCDateTime()
    inherit_cache = True  # SQLAlchemy reads it from each class's own namespace
    name = "minute_floor"
    sql: ClassVar[dict[str, str]] = {
        "postgresql": "date_trunc('minute', {})",
        # UTCDateTime stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) on SQLite.
        "sqlite": "strftime('%Y-%m-%d %H:%M:00.000000', {})",
    }


class epoch_s(DialectFunction[float]):
    """Seconds since 1970-01-01 UTC of a ``UTCDateTime`` column."""

    type = Float()
    inherit_cache = True
    name = "epoch_s"
    sql: ClassVar[dict[str, str]] = {
        "postgresql": "extract(epoch from {})",
        "sqlite": "((julianday({}) - 2440587.5) * 86400.0)",
    }
