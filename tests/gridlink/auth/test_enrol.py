"""Enrolment: `gridlink token create --role node --name NODE` makes the node and its token in one
step; the node stays offline (no allocation) until it registers its spec with that token."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gridlink.cli import app

runner = CliRunner()
SPEC = {"gpu_type": "H100-SXM", "gpu_count": 2, "gpu_min_cap_w": 200.0, "gpu_max_cap_w": 700.0}


def test_one_credential_lets_a_node_join(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gridlink.app import create_app
    from gridlink.db import migrate
    from gridlink.settings import GridlinkSettings, get_settings

    url = f"sqlite:///{(tmp_path / 'gl.db').as_posix()}"
    migrate.upgrade(url)
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        first = runner.invoke(app, ["token", "create", "--role", "node", "--name", "gpu-07"])
        again = runner.invoke(app, ["token", "create", "--role", "node", "--name", "gpu-07"])
        bad = runner.invoke(app, ["token", "create", "--role", "node", "--name", "no spaces"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    assert "created" in first.stderr and "exists" in again.stderr  # a second token, same node
    token = first.stdout.strip().splitlines()[-1]
    assert token.startswith("glk_")
    assert bad.exit_code == 2 and "--name" in bad.output

    with TestClient(create_app(GridlinkSettings(database_url=url))) as client:
        auth = {"Authorization": f"Bearer {token}"}
        node = client.get("/v1/nodes/1", headers=auth).json()
        assert node["name"] == "gpu-07" and node["status"] == "offline"
        assert node["current_allocation_w"] is None
        other = client.post("/v1/nodes", headers=auth, json={"name": "gpu-08", **SPEC})
        assert other.status_code == 403
        joined = client.post("/v1/nodes", headers=auth, json={"name": "gpu-07", **SPEC})
        assert joined.status_code == 200, joined.text
        assert joined.json()["status"] == "online" and joined.json()["max_power_w"] == 1400.0
