"""Checks on the repository's own files: the README's commands, docker-compose, the bootstrap."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_readme_shows_exactly_two_make_commands_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The two commands", 1)[1].split("```", 2)[1]
    commands = re.findall(r"^make (\w+)", block, flags=re.M)
    assert commands == ["run", "test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in commands:
        assert re.search(rf"^{target}:", makefile, flags=re.M)


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_docker_compose_wires_the_gateway_to_postgres() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "gateway"} <= set(services)
    gateway = services["gateway"]
    url = gateway["environment"]["GRIDLINK_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    assert any(str(p).endswith(":8000") for p in gateway["ports"])
    assert (ROOT / gateway["build"] / "Dockerfile").is_file()
    for name, service in services.items():
        assert "image" in service or "build" in service, name


def test_bootstrap_explains_when_no_python_is_found(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "none")}
    env["VENV"] = str(tmp_path / "venv")
    env["PYTHON"] = "/bin/false"
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bootstrap.sh")], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "is not a Python >= 3.12" in result.stderr


def test_bootstrap_accepts_this_interpreter(tmp_path: Path) -> None:
    # the finder alone: source the script's functions without creating a venv
    script = (
        (ROOT / "scripts" / "bootstrap.sh").read_text().split('if [ -x "$VENV/bin/python" ]')[0]
    )
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", "-c", script + "\nfind_python"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sys.executable
