"""The ``gridlink`` command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gridlink import __version__

app = typer.Typer(
    name="gridlink",
    help="gridlink: the demand-response gateway that turns grid signals into GPU power budgets.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(
    help="Database migrations (Alembic) on GRIDLINK_DATABASE_URL.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
console = Console()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [GRIDLINK_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default GRIDLINK_PORT).")] = None,
) -> None:
    """Serve the gateway API (OpenAPI docs at /docs, liveness at /healthz)."""
    import uvicorn

    from gridlink.app import create_app
    from gridlink.settings import get_settings

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    console.print(f"gridlink {__version__} listening on http://{host}:{port}  (docs: /docs)")
    console.print(f"database: {_redact(settings.effective_database_url)}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from gridlink.db import migrate
    from gridlink.settings import get_settings

    url = get_settings().effective_database_url
    migrate.upgrade(url, revision, verbose=True)
    console.print(f"database at revision {migrate.current(url)} ({_redact(url)})")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "-1") -> None:
    """Revert migrations down to REVISION (default: one step)."""
    from gridlink.db import migrate
    from gridlink.settings import get_settings

    url = get_settings().effective_database_url
    migrate.downgrade(url, revision, verbose=True)
    console.print(f"database at revision {migrate.current(url)} ({_redact(url)})")


@db_app.command("current")
def db_current() -> None:
    """Print the database's current revision."""
    from gridlink.db import migrate
    from gridlink.settings import get_settings

    url = get_settings().effective_database_url
    console.print(migrate.current(url) or "(empty database)")


@app.command()
def config() -> None:
    """Show the effective settings and where each comes from (GRIDLINK_* env or .env)."""
    from gridlink.settings import GridlinkSettings, get_settings

    settings = get_settings()
    table = Table("setting", "env var", "value", "meaning")
    for name, field in GridlinkSettings.model_fields.items():
        value = getattr(settings, name)
        if name == "database_url":
            value = _redact(settings.effective_database_url)
        table.add_row(name, f"GRIDLINK_{name.upper()}", str(value), field.description or "")
    console.print(table)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()
