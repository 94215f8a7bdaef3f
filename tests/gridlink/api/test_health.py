from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridlink.app import create_app
from gridlink.settings import GridlinkSettings


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app = create_app(GridlinkSettings(database_url=database_url))
    with TestClient(app) as c:
        yield c


def test_healthz_reports_database_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == "ok"


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/healthz" in schema["paths"]


def test_healthz_is_503_when_the_database_is_gone(tmp_path: object) -> None:
    app = create_app(GridlinkSettings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    with TestClient(app) as c:
        response = c.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_healthz_is_503_when_the_schema_is_missing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with TestClient(create_app(GridlinkSettings(database_url=url))) as c:
        response = c.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok" and body["migrations"] == "pending"
    assert str(tmp_path / "empty.db") in body["detail"]
    assert "run `gridlink db upgrade`" in body["detail"]


def test_healthz_reports_migrations_ok(client: TestClient) -> None:
    assert client.get("/healthz").json()["migrations"] == "ok"
