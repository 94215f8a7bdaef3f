from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gridlink.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "config", "version"):
        assert command in result.output


def test_db_upgrade_current_downgrade(tmp_path: Path) -> None:
    env = {**os.environ, "GRIDLINK_DATA_DIR": str(tmp_path)}
    env.pop("GRIDLINK_DATABASE_URL", None)

    def gridlink(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "gridlink", *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    assert "Running upgrade" in gridlink("db", "upgrade")
    assert (tmp_path / "gridlink.db").is_file()
    assert "empty database" not in gridlink("db", "current")
    gridlink("db", "downgrade", "base")
    assert "empty database" in gridlink("db", "current")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_healthz_and_docs(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "GRIDLINK_DATA_DIR": str(tmp_path), "GRIDLINK_PORT": str(port)}
    env.pop("GRIDLINK_DATABASE_URL", None)
    cli = [sys.executable, "-m", "gridlink"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*cli, "serve"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert f"listening on http://127.0.0.1:{port}" in out


def _ask_healthz(sock: socket.socket) -> bytes:
    """One keep-alive GET /healthz on an open connection: the whole response, or b"" when the
    server had closed the connection."""
    data = b""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        while chunk := sock.recv(65536):  # the whole response: head and body may come apart
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if sep and length is not None and len(body) >= int(length.group(1)):
                break
    except ConnectionError:
        return b""
    return data


def test_serve_keeps_an_idle_connection_for_http_keepalive_s(tmp_path: Path) -> None:
    """GRIDLINK_HTTP_KEEPALIVE_S reaches uvicorn: an idle connection is kept this long, then
    closed. The default outlasts httpx's own 5-s expiry, so a client that sends every 5 s
    never writes into a connection the server is closing (a soak died of that reset)."""
    from gridlink.settings import GridlinkSettings

    assert (
        GridlinkSettings.model_fields["http_keepalive_s"].default > httpx.Limits().keepalive_expiry
    )

    port = _free_port()
    env = {
        **os.environ,
        "GRIDLINK_DATA_DIR": str(tmp_path),
        "GRIDLINK_PORT": str(port),
        "GRIDLINK_HTTP_KEEPALIVE_S": "2",
    }
    env.pop("GRIDLINK_DATABASE_URL", None)
    cli = [sys.executable, "-m", "gridlink"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*cli, "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        with sock:
            assert _ask_healthz(sock).startswith(b"HTTP/1.1 200")
            time.sleep(0.5)  # idle, within the keep-alive: the same connection answers
            assert _ask_healthz(sock).startswith(b"HTTP/1.1 200")
            time.sleep(3.5)  # idle past it: the server has closed the connection
            assert _ask_healthz(sock) == b""
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_token_create_prints_the_token_alone_on_its_last_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from gridlink.app import create_app
    from gridlink.db import migrate
    from gridlink.settings import GridlinkSettings, get_settings

    url = f"sqlite:///{(tmp_path / 'gl.db').as_posix()}"
    migrate.upgrade(url)
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        done = runner.invoke(app, ["token", "create", "--role", "auditor", "--name", "ops"])
        refused = runner.invoke(app, ["token", "create", "--role", "node", "--node-id", "5"])
        listed = runner.invoke(app, ["token", "list"])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    token = done.stdout.strip().splitlines()[-1]
    assert token.startswith("glk_") and " " not in token
    assert refused.exit_code == 1 and "node 5 not found" in refused.stderr
    assert "ops" in listed.stdout and token not in listed.stdout

    with TestClient(create_app(GridlinkSettings(database_url=url))) as client:
        ok = client.get("/v1/audit", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert [row["action"] for row in ok.json()] == ["token.create"]
        assert client.get("/v1/audit").status_code == 401
