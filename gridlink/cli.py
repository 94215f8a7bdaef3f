"""The ``gridlink`` command line."""

from __future__ import annotations

import socket
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
token_app = typer.Typer(help="API bearer tokens (stored hashed).", no_args_is_help=True)
app.add_typer(token_app, name="token")
console = Console()
err_console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [GRIDLINK_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default GRIDLINK_PORT).")] = None,
) -> None:
    """Serve the gateway: the facility page at /, the API (docs at /docs), /metrics, /healthz.

    Fails fast when the database has no schema (or an old one) or the port is taken."""
    import uvicorn

    from gridlink.api.process import fix_mmap_threshold, limit_malloc_arenas, start_heap_trimmer
    from gridlink.app import create_app
    from gridlink.observability.logs import log_config
    from gridlink.settings import get_settings

    limit_malloc_arenas()  # before any thread: see gridlink/api/process.py
    fix_mmap_threshold()
    start_heap_trimmer()

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    _require_schema(settings.effective_database_url)
    sock = _listen_socket(host, port)
    console.print(
        f"gridlink {__version__} listening on http://{host}:{port}  (docs: /docs)", soft_wrap=True
    )
    page_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(
        f"facility page: http://{page_host}:{port}/  (sign in with a token from "
        "`gridlink token create --role manager`)",
        soft_wrap=True,
    )
    console.print(f"database: {_redact(settings.effective_database_url)}", soft_wrap=True)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level, settings.log_format),
        # Allocation streams never finish by themselves: on SIGTERM, cut them after this grace
        # (clients reconnect, to another replica if there is one) instead of waiting for them.
        timeout_graceful_shutdown=settings.stream_shutdown_grace_s,
        timeout_keep_alive=settings.http_keepalive_s,
    )
    uvicorn.Server(config).run(sockets=[sock])


def _listen_socket(host: str, port: int) -> socket.socket:
    """Bind before saying "listening": a taken port is one clear line, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        err_console.print(
            f"error: cannot listen on {host}:{port}: {err.strerror or err} (another gridlink "
            "running? choose another port with --port or GRIDLINK_PORT)",
            soft_wrap=True,
        )
        raise typer.Exit(code=1) from err
    return sock


def _require_schema(url: str) -> None:
    """Exit with the database's location and "run `gridlink db upgrade`" unless its schema is at
    this code's head (a SQLite file that does not exist is not created)."""
    from sqlalchemy.exc import SQLAlchemyError

    from gridlink.db.engine import build_engine
    from gridlink.db.schema_check import describe, missing_sqlite_file, schema_problem

    problem = missing_sqlite_file(url)
    if problem is None:
        engine = build_engine(url)
        try:
            with engine.connect() as connection:
                problem = schema_problem(connection, url)
        except SQLAlchemyError as err:
            reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
            problem = f"cannot reach the database ({describe(url)}): {reason}"
        finally:
            engine.dispose()
    if problem is not None:
        err_console.print(f"error: {problem}", soft_wrap=True)
        raise typer.Exit(code=1)


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


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, manager, node or auditor.")],
    node_id: Annotated[
        int | None, typer.Option(help="The node a node token is bound to (required for node).")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="A label (default: ROLE[-NODE_ID]). With --role node and no --node-id: the "
            "node's name; the node is created (a placeholder until it registers) if new."
        ),
    ] = None,
) -> None:
    """Create a token and print it ALONE on the last line (it is shown only once).

    Enrol a node in one step: `gridlink token create --role node --name NODE`."""
    from datetime import UTC, datetime

    from gridlink.auth.principal import SYSTEM
    from gridlink.auth.service import create_token
    from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
    from gridlink.errors import GridlinkError
    from gridlink.models.auth import Role

    try:
        role_value = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise typer.BadParameter(f"must be one of {allowed}", param_hint="--role") from None
    label = name or (f"{role}-{node_id}" if node_id is not None else role)
    if role_value is Role.NODE and node_id is None and name is not None:
        _enrol(name)
        return
    engine = build_engine(_settings_url())
    try:
        with session_scope(build_sessionmaker(engine)) as session:
            plaintext, row = create_token(
                session,
                role=role_value,
                name=label,
                node_id=node_id,
                actor=SYSTEM,
                now=datetime.now(UTC),
            )
            token_id = row.id
    except GridlinkError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(code=1) from err
    finally:
        engine.dispose()
    err_console.print(f"token {token_id} ({label}, role {role}) created; store it now:")
    print(plaintext)


def _enrol(name: str) -> None:
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from gridlink.auth.principal import SYSTEM
    from gridlink.auth.service import enrol_node
    from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
    from gridlink.errors import GridlinkError

    engine = build_engine(_settings_url())
    try:
        with session_scope(build_sessionmaker(engine)) as session:
            plaintext, row, created = enrol_node(
                session, name=name, actor=SYSTEM, now=datetime.now(UTC)
            )
            token_id, node_id = row.id, row.node_id
    except ValidationError as err:
        raise typer.BadParameter(
            "a node name is 1-128 letters, digits, '.', '_' or '-'", param_hint="--name"
        ) from err
    except GridlinkError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(code=1) from err
    finally:
        engine.dispose()
    what = "created (it registers its spec with this token)" if created else "exists"
    err_console.print(f"node {node_id} ({name}) {what}; node token {token_id} created; store it:")
    print(plaintext)


@token_app.command("list")
def token_list() -> None:
    """List tokens (never their values)."""
    from gridlink.auth import repository
    from gridlink.db.engine import build_engine, build_sessionmaker, session_scope

    engine = build_engine(_settings_url())
    table = Table("id", "name", "role", "node", "created", "revoked")
    try:
        with session_scope(build_sessionmaker(engine)) as session:
            for row in repository.list_all(session):
                table.add_row(
                    str(row.id),
                    row.name,
                    row.role.value,
                    "" if row.node_id is None else str(row.node_id),
                    row.created_at.isoformat(timespec="seconds"),
                    "" if row.revoked_at is None else row.revoked_at.isoformat(timespec="seconds"),
                )
    finally:
        engine.dispose()
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="Token id (token list).")]) -> None:
    """Revoke a token: it stops authenticating at once."""
    from datetime import UTC, datetime

    from gridlink.auth.principal import SYSTEM
    from gridlink.auth.service import revoke_token
    from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
    from gridlink.errors import GridlinkError

    engine = build_engine(_settings_url())
    try:
        with session_scope(build_sessionmaker(engine)) as session:
            revoke_token(session, token_id, actor=SYSTEM, now=datetime.now(UTC))
    except GridlinkError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(code=1) from err
    finally:
        engine.dispose()
    console.print(f"token {token_id} revoked")


@app.command()
def report(
    event_id: Annotated[int, typer.Argument(help="Event id (any version of the event).")],
    format: Annotated[str, typer.Option("--format", "-f", help="json, csv or html.")] = "json",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
    interval_s: Annotated[
        int | None, typer.Option(help="Settlement interval in s (default report_interval_s).")
    ] = None,
    regenerate: Annotated[
        bool, typer.Option(help="Regenerate first: a new version if late data changed inputs.")
    ] = False,
) -> None:
    """Write the delivered-reduction report of EVENT_ID (generated and stored if none yet)."""
    from datetime import UTC, datetime
    from pathlib import Path

    from gridlink.auth.principal import SYSTEM
    from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
    from gridlink.errors import GridlinkError
    from gridlink.reports import render, service
    from gridlink.settings import get_settings

    if format not in ("json", "csv", "html"):
        raise typer.BadParameter("must be json, csv or html", param_hint="--format")
    settings = get_settings()
    engine = build_engine(settings.effective_database_url)
    try:
        with session_scope(build_sessionmaker(engine)) as session:
            row = service.event_report(
                session,
                event_id,
                interval_s=interval_s or settings.report_interval_s,
                regenerate=regenerate,
                actor=SYSTEM,
                now=datetime.now(UTC),
                settings=settings,
            )
            text = render.render(row, format)
            summary = f"report {row.id} version {row.version} ({row.content_hash[:12]})"
    except GridlinkError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(code=1) from err
    finally:
        engine.dispose()
    if output is None:
        print(text, end="")
    else:
        Path(output).write_text(text, encoding="utf-8")
        err_console.print(f"{summary} written to {output}")


def _settings_url() -> str:
    """The database URL, once its schema is known to be current (else exit with the fix)."""
    from gridlink.settings import get_settings

    url = get_settings().effective_database_url
    _require_schema(url)
    return url


@app.command()
def config() -> None:
    """Show the effective settings and where each comes from (GRIDLINK_* env or .env)."""
    from gridlink.settings import GridlinkSettings, get_settings

    settings = get_settings()
    names = GridlinkSettings.model_fields
    longest = max(len(name) for name in names)
    table = Table()
    # Names are never cut: only the meaning column wraps when the terminal is narrow.
    table.add_column("setting", no_wrap=True, min_width=longest)
    table.add_column("env var", no_wrap=True, min_width=longest + len("GRIDLINK_"))
    table.add_column("value", overflow="fold")
    table.add_column("meaning")
    for name, field in names.items():
        value = getattr(settings, name)
        if name == "database_url":
            value = _redact(settings.effective_database_url)
        table.add_row(name, f"GRIDLINK_{name.upper()}", str(value), field.description or "")
    wide = Console(width=max(console.width, 2 * longest + 9 + 80))
    wide.print(table)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()
