"""Shared by the gateway benchmarks: a throw-away PostgreSQL database and a gateway subprocess.

The server is ``GRIDLINK_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    return os.environ.get("GRIDLINK_BENCH_POSTGRES_URL", DEFAULT_SERVER)


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """Create a database, migrate it to head, yield its SQLAlchemy URL, drop it afterwards."""
    from gridlink.db import migrate

    name = f"{prefix}_{secrets.token_hex(4)}"
    server = make_url(server_url()).set(drivername="postgresql")
    admin = server.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server.set(drivername="postgresql+psycopg", database=name)
    try:
        migrate.upgrade(url.render_as_string(hide_password=False))
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class RunningGateway:
    base_url: str
    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc); NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


@contextmanager
def gateway_process(
    database_url: str, launcher: list[str] | None = None, **env: str
) -> Iterator[RunningGateway]:
    """``python -m gridlink serve`` (or ``launcher + ["serve", ...]``) on a free loopback port,
    until the block ends."""
    port = free_port()
    environ = {
        **os.environ,
        "GRIDLINK_DATABASE_URL": database_url,
        "GRIDLINK_LOG_LEVEL": "warning",
        **env,
    }
    proc = subprocess.Popen(
        [
            *(launcher or [sys.executable, "-m", "gridlink"]),
            *["serve", "--host", "127.0.0.1", "--port", str(port)],
        ],
        env=environ,
        stdout=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts slowly
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.1)
        yield RunningGateway(base_url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def create_tokens(url: str, specs: list[tuple[str, int | None]]) -> list[str]:
    """A bearer token per ``(role, node_id)``, created directly in the database."""
    from datetime import UTC, datetime

    from gridlink.auth.principal import SYSTEM
    from gridlink.auth.service import create_token
    from gridlink.db.engine import build_engine, build_sessionmaker
    from gridlink.models import Role

    engine = build_engine(url)
    try:
        with build_sessionmaker(engine)() as session:
            now = datetime.now(UTC)
            tokens = [
                create_token(
                    session,
                    role=Role(role),
                    name=f"bench-{role}-{node_id}-{i}",
                    node_id=node_id,
                    actor=SYSTEM,
                    now=now,
                )[0]
                for i, (role, node_id) in enumerate(specs)
            ]
            session.commit()
            return tokens
    finally:
        engine.dispose()


def admin_token(url: str) -> str:
    """An admin bearer token, created directly in the database."""
    return create_tokens(url, [("admin", None)])[0]


def node_tokens(url: str, node_ids: list[int]) -> dict[int, str]:
    """A node bearer token per node, created directly in the database."""
    return dict(zip(node_ids, create_tokens(url, [("node", n) for n in node_ids]), strict=True))


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (Linux /proc); NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
