"""What a new user meets first: a missing schema, a taken port, the page URL, `gridlink config`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "gridlink"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GRIDLINK_DATABASE_URL"}
    env.update(extra)
    env.setdefault("GRIDLINK_DATA_DIR", str(tmp_path / "var"))
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_another_folder_without_a_database_fails_fast(tmp_path: Path) -> None:
    env = _env(tmp_path)
    del env["GRIDLINK_DATA_DIR"]  # the default: var/ under the current folder
    for args in (["serve"], ["token", "create", "--role", "admin"], ["token", "list"]):
        done = _run(args, env, tmp_path)
        assert done.returncode == 1, done
        assert "listening" not in done.stdout and "Traceback" not in done.stderr
        assert str(tmp_path / "var" / "gridlink.db") in done.stderr
        assert "run `gridlink db upgrade`" in done.stderr
    assert not (tmp_path / "var").exists()  # nothing created by the failed attempts


def test_an_empty_database_fails_fast_with_its_path(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    database.touch()
    env = _env(tmp_path, GRIDLINK_DATABASE_URL=f"sqlite:///{database}")
    done = _run(["serve"], env, tmp_path)
    assert done.returncode == 1
    assert f"(SQLite file {database}) has no gridlink schema" in done.stderr
    assert "run `gridlink db upgrade`" in done.stderr


def test_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _run(["db", "upgrade"], env, tmp_path).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(["serve", "--port", str(port)], env, tmp_path)
    assert done.returncode == 1
    assert "listening" not in done.stdout
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_prints_the_facility_page_url(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _env(tmp_path, GRIDLINK_PORT=str(port), GRIDLINK_LOG_FORMAT="json")
    assert _run(["db", "upgrade"], env, tmp_path).returncode == 0
    proc = subprocess.Popen(
        [*CLI, "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
        assert page.status_code == 200 and "signin-form" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["migrations"] == "ok"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert f"facility page: http://127.0.0.1:{port}/" in out
    assert "gridlink token create --role manager" in out
    assert any(line.startswith('{"ts"') for line in err.splitlines())  # JSON logs


def test_config_names_are_never_cut(tmp_path: Path) -> None:
    done = _run(["config"], _env(tmp_path, COLUMNS="80"), tmp_path)
    assert done.returncode == 0
    for name in (
        "GRIDLINK_TELEMETRY_ROLLUP_RETENTION_DAYS",
        "telemetry_housekeeping_interval_s",
        "GRIDLINK_SCHEDULER_SYNC_INTERVAL_S",
        "GRIDLINK_UI_REFRESH_S",
    ):
        assert name in done.stdout, name
