"""``pals proxy`` over real sockets, in front of a stand-in upstream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from pals_core.engine.vllm import VLLMEngine
from pals_core.proxy import ProxyApp
from tests.pals_core.proxy.upstream import Upstream, serve, serve_closing_idle


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    fake = Upstream()
    with serve(fake.app()) as url:
        yield fake, url


@pytest.fixture
def proxied(upstream: tuple[Upstream, str]) -> Iterator[tuple[Upstream, ProxyApp, str]]:
    fake, url = upstream
    app = ProxyApp(url, 2)
    with serve(app) as proxy_url:
        yield fake, app, proxy_url


def test_streams_pass_through_unchanged(proxied: tuple[Upstream, ProxyApp, str]) -> None:
    fake, _, url = proxied
    body = {"n_chunks": 4, "delay_s": 0.0}
    with httpx.stream("POST", url + "/v1/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines == [f'data: {{"i": {i}}}' for i in range(4)] + ["data: [DONE]"]
    models = httpx.get(url + "/v1/models?x=1")
    assert models.json()["data"][0]["id"] == "m" and models.headers["x-up"] == "1"
    bad = httpx.post(url + "/v1/completions", json={"fail": True})
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "bad prompt"
    assert fake.completed == 1


def test_admits_at_most_the_limit_and_follows_changes(
    proxied: tuple[Upstream, ProxyApp, str],
) -> None:
    fake, app, url = proxied

    async def clients(n: int) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            body = {"n_chunks": 5, "delay_s": 0.02}
            responses = await asyncio.gather(
                *(client.post(url + "/v1/completions", json=body) for _ in range(n))
            )
        return [r.status_code for r in responses]

    assert asyncio.run(clients(8)) == [200] * 8
    assert fake.most_in_flight == 2
    engine = VLLMEngine(url)  # the admin endpoint speaks the batch-limit protocol
    engine.set_batch_limit(5)
    assert engine.get_batch_limit() == 5 and app.limiter.limit == 5
    fake.most_in_flight = 0
    assert asyncio.run(clients(12)) == [200] * 12
    assert fake.most_in_flight == 5
    history = engine.admission_history()  # the proxy's own record of what it admitted
    assert max(active for _, active, _, limit in history if limit == 2) == 2
    assert max(active for _, active, _, limit in history if limit == 5) == 5
    assert history[-1][1:] == (0, 0, 5)
    assert [t for t, *_ in history] == sorted(t for t, *_ in history)
    engine.close()


def test_a_client_that_leaves_mid_stream_closes_the_upstream_request(
    proxied: tuple[Upstream, ProxyApp, str],
) -> None:
    fake, app, url = proxied
    body = {"n_chunks": 200, "delay_s": 0.02}
    with httpx.stream("POST", url + "/v1/completions", json=body) as response:
        next(response.iter_lines())
    deadline = time.monotonic() + 5
    while fake.disconnected == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.disconnected == 1 and fake.completed == 0
    assert app.limiter.active == 0


def test_a_client_that_leaves_while_queued_never_reaches_upstream(
    proxied: tuple[Upstream, ProxyApp, str],
) -> None:
    fake, app, url = proxied
    app.limiter.set_limit(1)

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            long = asyncio.create_task(
                client.post(url + "/v1/completions", json={"n_chunks": 20, "delay_s": 0.02})
            )
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.TimeoutException):
                await client.post(url + "/v1/completions", json={}, timeout=0.2)
            assert (await long).status_code == 200

    asyncio.run(scenario())
    time.sleep(0.1)
    assert fake.completed == 1 and fake.most_in_flight == 1
    assert app.limiter.active == 0 and app.limiter.waiting == 0


def test_metrics_pass_through_with_the_proxys_gauges(
    proxied: tuple[Upstream, ProxyApp, str],
) -> None:
    _, _, url = proxied
    text = httpx.get(url + "/metrics").text
    assert 'vllm:num_requests_running{engine="0"} 3.0' in text
    assert "\npals:batch_limit 2\n" in text and "pals:proxy_waiting_requests 0" in text
    assert "\npals:proxy_upstream_retries_total 0\n" in text


def test_admin_errors_and_a_missing_upstream() -> None:
    app = ProxyApp("http://127.0.0.1:9", 3)
    with serve(app) as url:
        for body in ({"max_num_seqs": 0}, {"max_num_seqs": "8"}, {"other": 1}):
            answer = httpx.post(url + "/pals/batch_limit", json=body)
            assert answer.status_code == 400 and "max_num_seqs" in answer.json()["detail"]
        assert httpx.get(url + "/pals/batch_limit").json()["max_num_seqs"] == 3
        assert httpx.delete(url + "/pals/batch_limit").status_code == 405
        down = httpx.post(url + "/v1/completions", json={})
        assert down.status_code == 502 and down.json()["error"]["type"] == "BadGateway"
        assert httpx.get(url + "/metrics").status_code == 502
        assert app.limiter.active == 0
    with pytest.raises(ValueError, match="upstream URL"):
        ProxyApp("127.0.0.1:8000", 2)


@pytest.mark.parametrize(("keepalive_s", "retries"), [(0.5, 0), (5.0, 1)])
def test_a_request_on_a_connection_the_upstream_closed_is_sent_again(
    keepalive_s: float, retries: int
) -> None:
    """The upstream closes connections idle for more than 1 s as a request arrives on one. A
    proxy keeping idle connections 0.5 s opens a new one after 1.2 s idle; one keeping them 5 s
    (vLLM's own keep-alive, so the race is real against vLLM) sends on the closing one, sees it
    close before any answer, and sends the request again on a new connection: the client gets
    its 200 either way, and the retry is counted in /metrics."""
    with serve_closing_idle(close_after_s=1.0) as upstream_url:
        app = ProxyApp(upstream_url, 2, upstream_keepalive_s=keepalive_s)
        with serve(app) as url, httpx.Client(timeout=10) as client:
            assert client.post(url + "/v1/completions", json={}).status_code == 200
            time.sleep(1.2)
            assert client.post(url + "/v1/completions", json={}).status_code == 200
            assert app.upstream_retries == retries
            deadline = time.monotonic() + 5  # the slot is freed just after the answer is sent
            while app.limiter.active and time.monotonic() < deadline:
                time.sleep(0.01)
            assert app.limiter.active == 0
    with pytest.raises(ValueError, match="keep-alive"):
        ProxyApp(upstream_url, 2, upstream_keepalive_s=0.0)


def test_a_request_whose_connection_breaks_twice_gets_a_502() -> None:
    """An upstream that drops every request unanswered: the proxy sends each request twice (one
    retry, not a loop), answers the client 502 in the OpenAI error shape and frees its slot."""
    with serve_closing_idle(close_after_s=1.0, answer=False) as upstream_url:
        app = ProxyApp(upstream_url, 1)
        with serve(app) as url, httpx.Client(timeout=10) as client:
            for sent in (1, 2):
                response = client.post(url + "/v1/completions", json={})
                assert response.status_code == 502
                assert response.json()["error"]["type"] == "BadGateway"
                assert app.upstream_retries == sent
            assert app.limiter.active == 0
            metrics = client.get(url + "/metrics")
            assert metrics.status_code == 502  # /metrics is vLLM's: none to append to
            assert app.upstream_retries == 3
