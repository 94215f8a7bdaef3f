"""Fixtures of the page tests: a live gateway on PostgreSQL, tokens of every role, a simulated
fleet, and a real headless Chromium (Debian's ``chromium``) driven by Playwright.

Outside CI a missing Chromium or Playwright skips the browser tests with the reason; in CI
(``CI`` set) it fails them: ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gridlink.auth.principal import SYSTEM
from gridlink.auth.service import create_token
from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
from gridlink.models.auth import Role
from gridlink.settings import GridlinkSettings
from tests.gridlink.live import live_gateway

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "var" / "test-artifacts"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: .ci/run installs chromium; the browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("GRIDLINK_TEST_CHROMIUM") or shutil.which("chromium")
    if not path:
        _unavailable("no chromium on PATH (apt-get install chromium)")
    assert path is not None
    return path


@dataclass
class Gateway:
    url: str
    database_url: str
    settings: GridlinkSettings
    tokens: dict[str, str]


def make_tokens(database_url: str) -> dict[str, str]:
    engine = build_engine(database_url)
    tokens: dict[str, str] = {}
    try:
        with session_scope(build_sessionmaker(engine)) as session:
            for role in ("admin", "manager", "auditor"):
                plaintext, _ = create_token(
                    session,
                    role=Role(role),
                    name=role,
                    node_id=None,
                    actor=SYSTEM,
                    now=datetime.now(UTC),
                )
                tokens[role] = plaintext
    finally:
        engine.dispose()
    return tokens


@pytest.fixture(scope="module")
def start_gateway(
    make_database: Callable[[str], str],
) -> Iterator[Callable[..., Gateway]]:
    """``start_gateway(**settings)``: a migrated PostgreSQL database and a live gateway on it."""
    stack: list[Any] = []

    def start(**overrides: Any) -> Gateway:
        url = make_database("postgresql")
        migrate.upgrade(url)
        values: dict[str, Any] = {
            "database_url": url,
            "facility_max_kw": 10.0,
            "node_stale_after_s": 10.0,
            "node_offline_after_s": 60.0,
            "ui_refresh_s": 0.5,
            **overrides,
        }
        settings = GridlinkSettings(**values)
        tokens = make_tokens(url)
        cm = live_gateway(settings)
        base_url, _app = cm.__enter__()
        stack.append(cm)
        return Gateway(base_url, url, settings, tokens)

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture(scope="module")
def browser(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A persistent Chromium context with a fresh user-data dir."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright (the Python package) is not installed: pip install playwright")
    user_data = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(user_data),
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def sign_in(page: Any, base_url: str, token: str) -> None:
    page.goto(base_url + "/")
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")


def make_node_token(database_url: str, node_id: int) -> str:
    engine = build_engine(database_url)
    try:
        with session_scope(build_sessionmaker(engine)) as session:
            plaintext, _ = create_token(
                session,
                role=Role.NODE,
                name=f"node-{node_id}",
                node_id=node_id,
                actor=SYSTEM,
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()
    return plaintext
