from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gridlink.settings import GridlinkSettings, get_settings


def test_default_database_is_sqlite_under_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDLINK_DATABASE_URL", raising=False)
    monkeypatch.setenv("GRIDLINK_DATA_DIR", "/srv/gl")
    assert GridlinkSettings().effective_database_url == "sqlite:////srv/gl/gridlink.db"


def test_environment_overrides_and_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("GRIDLINK_PORT", "9001")
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", "postgresql+psycopg://u@h/db")
    try:
        settings = get_settings()
        assert settings.port == 9001
        assert settings.effective_database_url == "postgresql+psycopg://u@h/db"
        assert get_settings() is settings
    finally:
        get_settings.cache_clear()


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRIDLINK_PORT", raising=False)
    (tmp_path / ".env").write_text("GRIDLINK_PORT=8123\n")
    assert GridlinkSettings().port == 8123


def test_bad_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLINK_PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        GridlinkSettings()
    monkeypatch.delenv("GRIDLINK_PORT")
    monkeypatch.setenv("GRIDLINK_LOG_LEVEL", "loud")
    with pytest.raises(ValidationError, match="log_level must be one of"):
        GridlinkSettings()


def test_gateway_settings_are_checked_together() -> None:
    with pytest.raises(ValidationError, match="facility_overhead_kw must be below"):
        GridlinkSettings(facility_max_kw=10, facility_overhead_kw=10)
    with pytest.raises(ValidationError, match="node_offline_after_s"):
        GridlinkSettings(node_stale_after_s=60, node_offline_after_s=30)
    with pytest.raises(ValidationError, match="baseline_mode"):
        GridlinkSettings(baseline_mode="guess")  # type: ignore[arg-type]
    settings = GridlinkSettings(facility_max_kw=500)
    assert settings.effective_baseline_fixed_kw == 500
    assert GridlinkSettings(baseline_fixed_kw=420).effective_baseline_fixed_kw == 420
