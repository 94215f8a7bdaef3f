"""VEN ingestion details: a record inserted concurrently is reused, not duplicated."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridlink.models.openadr import OpenAdrEvent
from gridlink.openadr.service import _new_record
from tests.gridlink.conftest import T0


def test_a_concurrently_inserted_record_is_reused(db_session: Session) -> None:
    first = _new_record(db_session, "ev-1", {"id": "ev-1"}, T0)
    db_session.flush()
    db_session.expunge(first)  # as if another transaction had inserted it
    again = _new_record(db_session, "ev-1", {"id": "ev-1"}, T0)
    assert again.id == first.id
    count = db_session.scalar(select(func.count()).select_from(OpenAdrEvent))
    assert count == 1
