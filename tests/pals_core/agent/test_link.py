"""Bad input at the agent's edges: a malformed trajectory is refused naming the field (the last
good one stays); a refused token stops the agent with exit code 3."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pals_core.agent.gateway import GatewayClient, StreamEvent
from pals_core.agent.link import LinkConfig, NodeLink
from pals_core.agent.spool import TelemetrySpool
from pals_core.cli import app
from tests.pals_core.agent.harness import allocation_event, sim_node_control


def test_a_bad_trajectory_is_refused_and_the_last_good_one_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = sim_node_control()
    http = httpx.AsyncClient()
    link = NodeLink(
        node,
        GatewayClient("http://127.0.0.1:9", None, http),
        TelemetrySpool(":memory:"),
        LinkConfig(),
    )
    link._take(4, allocation_event(1, 400.0))
    with caplog.at_level(logging.WARNING):
        link._take(4, allocation_event(2, -3.0))
        link._take(4, StreamEvent("allocation", "{not json", "3", None))
    asyncio.run(http.aclose())
    assert node.status.version_id == 1 and link.last_event_id == "1"
    assert node.status.rejected_trajectories == 2
    assert "segments.0.power_w" in caplog.text and "keeping version 1" in caplog.text
    assert node.follower.trajectory is not None
    assert node.follower.trajectory.segments[0].power_w == 400.0


def test_a_refused_token_exits_with_code_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gridlink.db import migrate
    from gridlink.settings import GridlinkSettings
    from pals_core.settings import get_settings
    from tests.gridlink.live import live_gateway

    url = f"sqlite:///{(tmp_path / 'gl.db').as_posix()}"
    migrate.upgrade(url)
    monkeypatch.setenv("PALS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PALS_GATEWAY_TOKEN", "glk_not-a-token")
    get_settings.cache_clear()
    try:
        with live_gateway(GridlinkSettings(database_url=url, scheduler_enabled=False)) as (base, _):
            result = CliRunner().invoke(
                app,
                ["fleet", "--gateway", base, "--nodes", "llama-3.1-8b@1", "--metrics-port", "0"],
            )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 3, result.output
    assert "refused the token" in result.output


def test_bad_fleet_specs_are_refused_naming_the_option() -> None:
    for spec in ("0", "3xgpt-9@1", "llama-3.1-8b@3", "lots"):
        result = CliRunner().invoke(
            app,
            ["fleet", "--gateway", "http://127.0.0.1:9", "--nodes", spec],
            env={"PALS_GATEWAY_TOKEN": "x"},
        )
        assert result.exit_code == 2, (spec, result.output)
        assert "--nodes" in result.output
