"""Structured logs: one JSON object per line when configured."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest

from gridlink.observability.logs import JsonFormatter, log_config


def test_json_lines_carry_extra_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "gridlink.x",
            "levelname": "WARNING",
            "msg": "node %s stale",
            "args": ("n1",),
            "node_id": 3,
        }
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "gridlink.x"
    assert entry["msg"] == "node n1 stale" and entry["node_id"] == 3
    assert entry["ts"].endswith("+00:00")


def test_log_config_routes_uvicorn_and_gridlink(capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(log_config("info", "json"))
    try:
        logging.getLogger("gridlink.test").info("hello", extra={"route": "/"})
        logging.getLogger("gridlink.test").debug("hidden")
        lines = capsys.readouterr().err.strip().splitlines()
        assert [json.loads(line)["msg"] for line in lines] == ["hello"]
        assert json.loads(lines[0])["route"] == "/"
        text = log_config("debug", "text")
        assert text["formatters"]["default"] == {
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"
        }
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "gridlink"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
