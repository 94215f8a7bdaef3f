"""`pals gpu` against the fake NVML, and without any NVML (as on this machine)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pals_core.cli import app
from pals_core.device.nvml import load_nvml
from tests.pals_core.device.fake_nvml import FakeNVML, two_h100s

pynvml = load_nvml()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    from pals_core.settings import get_settings

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PALS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PALS_OBSERVE_ONLY", raising=False)
    get_settings.cache_clear()
    yield {"COLUMNS": "250"}
    get_settings.cache_clear()


def test_list_without_nvml_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    FakeNVML([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND).install(monkeypatch.setattr)  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["gpu", "list"], env=env)
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: NVML is unavailable")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_list_shows_each_gpu(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    FakeNVML(two_h100s(limit_mw=600_000)).install(monkeypatch.setattr)  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["gpu", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert "GPU-bbbbbbbb-1111-1111-1111-111111111111" in result.output
    assert "600.0" in result.output and "200-700 (700)" in result.output
    assert "350.1" in result.output


def test_set_limit_then_restore(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp_path: Path
) -> None:
    fake = FakeNVML(two_h100s(limit_mw=650_000)).install(monkeypatch.setattr)  # type: ignore[arg-type]
    runner = CliRunner()
    result = runner.invoke(app, ["gpu", "set-limit", "--gpu", "1", "--watts", "400"], env=env)
    assert result.exit_code == 0, result.output
    assert "650.0 W -> 400.0 W" in result.output
    assert fake.devices[1].limit_mw == 400_000  # left set after the command exits
    saved = json.loads((tmp_path / "gpu-restore.json").read_text())["gpus"]
    assert saved[fake.devices[1].uuid]["original_w"] == 650.0

    result = runner.invoke(app, ["gpu", "set-limit", "--gpu", "1", "--watts", "900"], env=env)
    assert result.exit_code == 1
    assert "outside its allowed range [200.0, 700.0] W" in result.output
    result = runner.invoke(app, ["gpu", "set-limit", "--gpu", "5", "--watts", "300"], env=env)
    assert result.exit_code == 2 and "no visible GPU 5" in result.output

    result = runner.invoke(app, ["gpu", "restore"], env=env)
    assert result.exit_code == 0, result.output
    assert fake.devices[1].limit_mw == 650_000
    assert not (tmp_path / "gpu-restore.json").exists()
    assert "nothing to restore" in runner.invoke(app, ["gpu", "restore"], env=env).output

    result = runner.invoke(app, ["gpu", "restore", "--defaults"], env=env)
    assert result.exit_code == 0, result.output
    assert [d.limit_mw for d in fake.devices] == [700_000, 700_000]
