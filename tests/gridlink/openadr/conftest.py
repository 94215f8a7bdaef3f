"""OpenADR fixtures: the fake VTN on a loopback port, and a VEN wired to the test database and
the API's virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gridlink.openadr.ven import OpenAdrVen
from gridlink.settings import GridlinkSettings
from tests.gridlink.conftest import Api
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import VtnServer, serve

PROGRAM = "prog-1"


def iso_z(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def event_body(start: datetime, payloads: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A one-interval eventRequest of PROGRAM starting at ``start`` for one hour."""
    return {
        "programID": PROGRAM,
        "intervalPeriod": {"start": iso_z(start), "duration": "PT1H"},
        "intervals": [{"id": 0, "payloads": payloads}],
        **extra,
    }


@pytest.fixture
def vtn() -> FakeVtn:
    fake = FakeVtn()
    fake.add_program(PROGRAM)
    return fake


@pytest.fixture
def vtn_server(vtn: FakeVtn) -> Iterator[VtnServer]:
    with serve(vtn) as server:
        yield server


@pytest.fixture
def factory(db_session: Session) -> sessionmaker[Session]:
    """Sessions on the test's connection: their commits are savepoints rolled back at the end."""
    return sessionmaker(
        bind=db_session.connection(),
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
    )


def ven_settings(api: Api, url: str, **overrides: Any) -> GridlinkSettings:
    values = {
        **api.settings.model_dump(),
        "openadr_enabled": True,
        "openadr_vtn_url": url,
        "openadr_client_id": "ven-client",
        "openadr_client_secret": "s3cret",
        "openadr_program_ids": [PROGRAM],
        **overrides,
    }
    return GridlinkSettings(**values)


@pytest.fixture
def ven(api: Api, vtn_server: VtnServer, factory: sessionmaker[Session]) -> Iterator[OpenAdrVen]:
    settings = ven_settings(api, vtn_server.url)
    client = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
    yield client
    client.close()
