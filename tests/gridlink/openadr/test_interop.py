"""The VEN against behaviours of independent VTNs (read in their sources; docs/openadr.md,
"Interoperability"): one test per fact, on the fake VTN taking that behaviour on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.models.event import Event, EventSource, EventStatus
from gridlink.models.openadr import OpenAdrEvent, OpenAdrEventState
from gridlink.openadr.auth import TokenSource
from gridlink.openadr.errors import VtnError
from gridlink.openadr.ven import OpenAdrVen
from gridlink.openadr.vtn import VtnClient
from tests.gridlink.conftest import T0, Api, iso
from tests.gridlink.openadr.conftest import PROGRAM, event_body, ven_settings
from tests.gridlink.openadr.fake_vtn import FakeVtn
from tests.gridlink.openadr.fake_vtn_app import serve

LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [60]}]
DEMAND = [{"payloadType": "DEMAND", "readingType": "MEAN", "units": "KW"}]


@pytest.fixture
def make_ven(api: Api, factory: sessionmaker[Session]) -> Iterator[Any]:
    """``make_ven(vtn, **settings)``: the fake VTN served with the given behaviour and a VEN
    on it; both closed at the end."""
    opened: list[Any] = []

    def make(vtn: FakeVtn, **overrides: Any) -> OpenAdrVen:
        vtn.add_program(PROGRAM)
        server = serve(vtn)
        running = server.__enter__()
        opened.append(server)
        settings = ven_settings(api, running.url, **overrides)
        ven = OpenAdrVen(factory, settings, api.publisher, clock=lambda: api.clock.now)
        opened.append(ven)
        return ven

    yield make
    for item in reversed(opened):
        if isinstance(item, OpenAdrVen):
            item.close()
        else:
            item.__exit__(None, None, None)


def _events(session: Session) -> list[Event]:
    session.expire_all()
    stmt = select(Event).where(Event.source == EventSource.OPENADR)
    return list(session.scalars(stmt))


@pytest.mark.parametrize("style", ["basic", "form"])
def test_without_auth_server_the_token_comes_from_auth_token(
    make_ven: Any, db_session: Session, style: str
) -> None:
    # openadr-rs and openleadr-rs serve POST /auth/token but no GET /auth/server
    vtn = FakeVtn(auth_server=False, token_auth=style)
    ven = make_ven(vtn, openadr_token_auth=style)
    vtn.put_event("ev-1", event_body(T0 + timedelta(hours=1), LIMIT))
    assert ven.poll()
    assert vtn.tokens_issued == 1
    assert vtn.violations == []  # never Basic and form credentials at once (400 there)
    assert len(_events(db_session)) == 1


def test_without_a_token_endpoint_a_bearer_token_issued_out_of_band(
    make_ven: Any, db_session: Session
) -> None:
    # clj-oa3-vtn: GET /auth/server answers, POST /auth/token is 501
    vtn = FakeVtn(token_endpoint=False)
    vtn.tokens.add("issued-out-of-band")
    ven = make_ven(
        vtn,
        openadr_client_id=None,
        openadr_client_secret=None,
        openadr_bearer_token="issued-out-of-band",
    )
    vtn.put_event("ev-1", event_body(T0 + timedelta(hours=1), LIMIT))
    assert ven.poll()
    assert vtn.tokens_issued == 0
    assert len(_events(db_session)) == 1


def test_a_vtn_under_a_context_path(make_ven: Any, db_session: Session) -> None:
    # clj-oa3-vtn serves the API under /openadr3/3.1.0; discovery resolves against it
    vtn = FakeVtn(context_path="/openadr3/3.1.0")
    ven = make_ven(vtn)
    vtn.put_event("ev-1", event_body(T0 + timedelta(hours=1), LIMIT))
    assert ven.poll()
    assert vtn.tokens_issued == 1
    assert len(_events(db_session)) == 1


def test_a_lower_case_bearer_token_type(make_ven: Any, db_session: Session) -> None:
    # openleadr-rs answers token_type "bearer" (the spec's enum says "Bearer")
    vtn = FakeVtn(token_type="bearer")
    ven = make_ven(vtn)
    vtn.put_event("ev-1", event_body(T0 + timedelta(hours=1), LIMIT))
    assert ven.poll()


def test_a_vtn_refusing_the_targets_query_is_polled_without_it(
    make_ven: Any, db_session: Session
) -> None:
    # openadr-rs answers 501 to target filters
    vtn = FakeVtn(refuse_targets_query=501)
    ven = make_ven(vtn)
    vtn.put_event("ev-1", event_body(T0 + timedelta(hours=1), LIMIT))
    assert ven.poll()
    assert len(_events(db_session)) == 1
    asked = len(vtn.requests)
    assert ven.poll()
    assert len(vtn.requests) - asked == 1  # one listing: the targets query is not retried


def test_a_transpired_event_no_longer_listed_is_ended_not_deleted(
    api: Api, make_ven: Any, db_session: Session
) -> None:
    # clj-oa3-vtn lists events active from now on; the spec's `active` query does the same
    vtn = FakeVtn()
    ven = make_ven(vtn)
    node = api.register_node("n1")
    start = T0 + timedelta(minutes=30)
    vtn.put_event("ev-1", event_body(start, LIMIT, reportDescriptors=DEMAND))
    assert ven.poll()
    samples = [
        {"ts": iso(T0 + timedelta(minutes=m)), "power_w": 50_000.0, "throughput_tok_s": 1.0}
        for m in range(0, 90)
    ]
    api.clock.set(T0 + timedelta(minutes=95))
    api.request("POST", f"/v1/nodes/{node['id']}/telemetry", json={"samples": samples})
    vtn.hidden.add("ev-1")
    assert ven.poll()
    (event,) = _events(db_session)
    assert event.status is not EventStatus.CANCELLED
    record = db_session.scalars(select(OpenAdrEvent)).one()
    assert record.state is OpenAdrEventState.ACCEPTED
    assert ven.report() == 1
    (interval,) = vtn.reports[0]["resources"][0]["intervals"]
    assert interval["intervalPeriod"]["duration"] == "PT3600S"  # the whole hour, not cut


def test_an_event_deleted_before_its_end_is_still_cancelled(
    make_ven: Any, db_session: Session
) -> None:
    vtn = FakeVtn()
    ven = make_ven(vtn)
    vtn.put_event("ev-1", event_body(T0 + timedelta(hours=1), LIMIT))
    assert ven.poll()
    vtn.hidden.add("ev-1")  # gone from the listing before it even began
    assert ven.poll()
    (event,) = _events(db_session)
    assert event.status is EventStatus.CANCELLED


def test_reports_carry_the_program_id_a_3_0_vtn_requires(api: Api, make_ven: Any) -> None:
    # openadr-rs (3.0.1): reportRequest.programID is required; 3.1 allows it
    vtn = FakeVtn(require_report_program_id=True)
    ven = make_ven(vtn)
    node = api.register_node("n1")
    vtn.put_event("ev-1", event_body(T0, LIMIT, reportDescriptors=DEMAND))
    assert ven.poll()
    samples = [
        {"ts": iso(T0 + timedelta(minutes=m)), "power_w": 50_000.0, "throughput_tok_s": 1.0}
        for m in range(0, 60)
    ]
    api.clock.set(T0 + timedelta(minutes=61))
    api.request("POST", f"/v1/nodes/{node['id']}/telemetry", json={"samples": samples})
    assert ven.report() == 1
    assert vtn.reports[0]["programID"] == PROGRAM
    assert vtn.violations == []


def test_problem_details_are_in_the_error_and_paging_is_bounded() -> None:
    # RFC 9457 problem+json bodies (openleadr-rs, clj-oa3-vtn); limit outside 1..50 is 400
    vtn = FakeVtn()
    with serve(vtn) as server, httpx.Client() as http:
        tokens = TokenSource(
            http, server.url, client_id="ven-client", client_secret="s3cret", style="basic"
        )
        with pytest.raises(VtnError) as refused:
            VtnClient(http, server.url, tokens, page_limit=51).events(None)
        assert refused.value.status == 400 and not refused.value.retryable
        assert "limit must be in [1, 50]" in str(refused.value)
        assert VtnClient(http, server.url, tokens, page_limit=50).events(None) == []
