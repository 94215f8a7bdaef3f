"""The VTN client and token source on a mock transport: discovery, renewal, client
authentication styles, paging, and answers that are not what the spec promises."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl

import httpx
import pytest

from gridlink.openadr.auth import TokenSource
from gridlink.openadr.errors import VtnError
from gridlink.openadr.vtn import VtnClient, omit_nulls


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _vtn(token_requests: list[httpx.Request], events: object = ()) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oadr/auth/server":
            return httpx.Response(200, json={"tokenURL": "token-endpoint"})  # relative
        if request.url.path == "/oadr/token-endpoint":
            token_requests.append(request)
            n = len(token_requests)
            return httpx.Response(
                200, json={"access_token": f"t{n}", "token_type": "bearer", "expires_in": 120}
            )
        if request.url.path == "/oadr/events":
            if events == "garbage":
                return httpx.Response(200, text="<html>")
            return httpx.Response(200, json=events)
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def _tokens(transport: httpx.MockTransport, style: str, clock: Clock) -> TokenSource:
    return TokenSource(
        httpx.Client(transport=transport),
        "http://vtn/oadr",
        client_id="ven",
        client_secret="pw",
        style=style,  # type: ignore[arg-type]
        scope="read_targets",
        monotonic=clock,
    )


def test_discovery_caching_and_renewal_before_expiry() -> None:
    requests: list[httpx.Request] = []
    clock = Clock()
    tokens = _tokens(_vtn(requests), "basic", clock)
    assert tokens.token() == "t1"
    clock.t = 80.0  # within 120 s - 30 s: cached
    assert tokens.token() == "t1"
    clock.t = 95.0  # less than 30 s left: renewed
    assert tokens.token() == "t2"
    assert len(requests) == 2
    assert str(requests[0].url) == "http://vtn/oadr/token-endpoint"


@pytest.mark.parametrize("style", ["basic", "form"])
def test_client_authentication_styles(style: str) -> None:
    requests: list[httpx.Request] = []
    _tokens(_vtn(requests), style, Clock()).token()
    (request,) = requests
    form = dict(parse_qsl(request.content.decode()))
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "read_targets"
    if style == "basic":
        assert request.headers["authorization"] == "Basic " + base64.b64encode(b"ven:pw").decode()
        assert "client_secret" not in form
    else:
        assert "authorization" not in request.headers
        assert (form["client_id"], form["client_secret"]) == ("ven", "pw")


def test_answers_that_are_not_json_or_not_a_list_are_retryable_errors() -> None:
    for events in ("garbage", {"not": "a list"}):
        client = VtnClient(
            httpx.Client(transport=_vtn([], events)),
            "http://vtn/oadr",
            _tokens(_vtn([]), "basic", Clock()),
            page_limit=50,
        )
        with pytest.raises(VtnError) as info:
            client.events("prog-1")
        assert info.value.retryable


def test_no_credentials_no_token() -> None:
    tokens = TokenSource(
        httpx.Client(), "http://vtn", client_id=None, client_secret=None, style="basic"
    )
    assert tokens.token() is None


def test_omit_nulls_is_recursive() -> None:
    body = {"a": None, "b": [{"c": None, "d": 1}], "e": {"f": None}}
    assert omit_nulls(body) == {"b": [{"d": 1}], "e": {}}
