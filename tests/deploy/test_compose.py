"""docker-compose.yml and deploy/: there is no Docker engine here, so the files are checked
instead: every image, build, command, port, volume and config file they name exists and agrees
with the settings and the code, and the Grafana dashboard only queries metrics the gateway
exports (read from a real gateway's /metrics)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from fastapi.testclient import TestClient

from gridlink.app import create_app
from gridlink.cli import app as gridlink_cli
from gridlink.db import migrate
from gridlink.settings import GridlinkSettings
from pals_core.cli import app as pals_cli

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_BUILTINS = {"up"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def test_the_stack_has_every_service(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {"postgres", "gateway", "fleet", "prometheus", "grafana"}


def test_images_are_pinned_and_builds_have_a_dockerfile(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").is_file(), name
        else:
            image = service["image"]
            assert re.fullmatch(r"[a-z0-9/_.-]+:[A-Za-z0-9_.-]+", image), (name, image)
            assert not image.endswith(":latest"), (name, image)


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")  # typer may bring its own click: no isinstance


def _click_command(root: typer.Typer, words: list[str]) -> tuple[Any, list[str]]:
    command: Any = typer.main.get_command(root)
    rest = list(words)
    while rest and _is_group(command) and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    return command, rest


def _check_cli(program: str, words: list[str]) -> None:
    root = {"gridlink": gridlink_cli, "pals": pals_cli}[program]
    command, rest = _click_command(root, words)
    if _is_group(command):
        raise AssertionError(f"`{program} {' '.join(words)}`: no such command")
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"`{program} {words}`: no option {word}"


def _commands(service: dict[str, Any]) -> list[list[str]]:
    command = service.get("command", [])
    if command[:2] == ["sh", "-c"]:
        return [part.split() for part in command[2].split("&&")]
    return [command]


def test_commands_name_real_cli_commands_and_options(compose: dict[str, Any]) -> None:
    for name in ("gateway", "fleet"):
        for words in _commands(services(compose)[name]):
            assert words[0] in ("gridlink", "pals"), (name, words)
            _check_cli(words[0], words[1:])


def test_gateway_port_agrees_with_settings_command_and_healthcheck(compose: dict[str, Any]) -> None:
    gateway = services(compose)["gateway"]
    env = gateway["environment"]
    settings = GridlinkSettings(
        _env_file=None,
        **{key.removeprefix("GRIDLINK_").lower(): value for key, value in env.items()},
    )
    unknown = {
        k for k in env if k.removeprefix("GRIDLINK_").lower() not in GridlinkSettings.model_fields
    }
    assert not unknown, f"not gridlink settings: {unknown}"
    serve = _commands(gateway)[-1]
    assert serve[serve.index("--port") + 1] == str(settings.port)
    assert gateway["ports"] == [f"{settings.port}:{settings.port}"]
    assert f"127.0.0.1:{settings.port}/healthz" in " ".join(gateway["healthcheck"]["test"])
    assert settings.database_url is not None and "@postgres:5432/" in settings.database_url
    pg_env = services(compose)["postgres"]["environment"]
    assert settings.database_url.endswith(
        f"{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}@postgres:5432/{pg_env['POSTGRES_DB']}"
    )


def _host_volumes(service: dict[str, Any]) -> list[tuple[Path, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("./"):
            mounts.append((ROOT / host, container))
    return mounts


def test_mounted_config_files_exist(compose: dict[str, Any]) -> None:
    mounted = [m for s in services(compose).values() for m in _host_volumes(s)]
    assert len(mounted) == 3
    for host, _container in mounted:
        assert host.exists(), host


def test_prometheus_scrapes_the_gateway_and_the_agents(compose: dict[str, Any]) -> None:
    prometheus = services(compose)["prometheus"]
    ((host, container),) = _host_volumes(prometheus)
    assert f"--config.file={container}" in prometheus["command"]
    config = load_yaml(host)
    targets = {job["job_name"]: job for job in config["scrape_configs"]}
    gateway_port = services(compose)["gateway"]["ports"][0].split(":")[1]
    assert targets["gridlink"]["static_configs"][0]["targets"] == [f"gateway:{gateway_port}"]
    fleet_port = services(compose)["fleet"]["ports"][0].split(":")[1]
    assert targets["pals-agents"]["static_configs"][0]["targets"] == [f"fleet:{fleet_port}"]
    assert all(job["metrics_path"] == "/metrics" for job in targets.values())


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard(
    compose: dict[str, Any],
) -> None:
    grafana = services(compose)["grafana"]
    mounts = dict((container, host) for host, container in _host_volumes(grafana))
    provisioning = mounts["/etc/grafana/provisioning"]
    datasource = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"][0]
    prometheus_port = services(compose)["prometheus"]["ports"][0].split(":")[1]
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    provider = load_yaml(provisioning / "dashboards" / "gridlink.yml")["providers"][0]
    dashboards = mounts[provider["options"]["path"]]
    assert (dashboards / "gridlink.json").is_file()
    dashboard = json.loads((dashboards / "gridlink.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}


@pytest.fixture(scope="module")
def exported_metrics(make_database: Callable[[str], str]) -> set[str]:
    """Metric names from a real gateway's /metrics (histogram/counter suffixes included)."""
    url = make_database("sqlite")
    migrate.upgrade(url)
    with TestClient(create_app(GridlinkSettings(database_url=url))) as client:
        client.get("/healthz")
        text = client.get("/metrics").text
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    }


def test_dashboard_queries_name_metrics_the_gateway_exports(exported_metrics: set[str]) -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/gridlink.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = {m for e in exprs for m in re.findall(r"\b(gridlink_[a-z_]+|up)\b", e)}
    assert len(named) >= 10
    missing = named - exported_metrics - PROMETHEUS_BUILTINS
    assert not missing, f"the dashboard queries metrics nobody exports: {missing}"
