"""``gridlink report EVENT_ID --format json|csv|html -o FILE`` on an embedded database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridlink.cli import app
from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker, session_scope
from gridlink.settings import GridlinkSettings, get_settings
from tests.gridlink.reports.fleet import add_event, add_node, add_samples

runner = CliRunner()
T0 = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture
def event_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    url = f"sqlite:///{(tmp_path / 'cli.db').as_posix()}"
    migrate.upgrade(url)
    monkeypatch.setenv("GRIDLINK_DATABASE_URL", url)
    monkeypatch.setenv("GRIDLINK_REPORT_SAMPLE_PERIOD_S", "60")
    get_settings.cache_clear()
    engine = build_engine(url)
    with session_scope(build_sessionmaker(engine)) as session:
        node = add_node(session, "n1")
        add_samples(session, node.id, T0, T0 + timedelta(hours=3), period_s=60.0)
        start = T0 + timedelta(hours=1, minutes=30)
        event = add_event(session, GridlinkSettings(), start, 3600, limit_kw=50.0, now=T0)
    engine.dispose()
    yield event
    get_settings.cache_clear()


def test_report_in_each_format(event_id: int, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    result = runner.invoke(app, ["report", str(event_id), "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("subject,version,content_hash,interval_start_utc")
    assert len(lines) == 1 + 4 * 4  # a 1-h event at 15 min, four baselines

    result = runner.invoke(app, ["report", str(event_id)])  # json to stdout: the stored version
    assert result.exit_code == 0, result.output
    stored = json.loads(result.stdout)
    assert stored["version"] == 1 and stored["body"]["totals"]["event_intervals"] == 4

    page = tmp_path / "r.html"
    result = runner.invoke(
        app, ["report", str(event_id), "-f", "html", "-o", str(page), "--regenerate"]
    )
    assert result.exit_code == 0, result.output
    assert f"version 1 ({stored['content_hash'][:12]})" in result.output  # unchanged inputs
    assert "<svg" in page.read_text()

    five = runner.invoke(app, ["report", str(event_id), "--interval-s", "300"])
    assert json.loads(five.stdout)["body"]["totals"]["event_intervals"] == 12


def test_bad_input_is_refused_clearly(event_id: int) -> None:
    result = runner.invoke(app, ["report", str(event_id), "--format", "pdf"])
    assert result.exit_code != 0 and "json, csv or html" in result.output
    result = runner.invoke(app, ["report", "999"])
    assert result.exit_code == 1 and "event 999 not found" in result.output
    result = runner.invoke(app, ["report", str(event_id), "--interval-s", "7"])
    assert result.exit_code == 1 and "interval_s" in result.output
