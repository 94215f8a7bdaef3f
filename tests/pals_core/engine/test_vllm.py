"""The vLLM adapter over HTTP: scraping, the batch-limit admin endpoint, and its errors."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from pals_core.engine.base import ITL_BUCKETS_S, TTFT_BUCKETS_S, EngineMetrics, Histogram
from pals_core.engine.prometheus import render_metrics
from pals_core.engine.vllm import VLLMEngine
from pals_core.errors import ConfigurationError, EngineError

BASE = "http://vllm.test:8000"


class FakeVLLM:
    """What a vLLM with the PALS admin plugin answers."""

    def __init__(self) -> None:
        self.max_num_seqs = 256
        self.generated = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/metrics":
            self.generated += 100
            m = EngineMetrics(
                0.0,
                self.generated,
                10,
                2,
                0,
                1,
                Histogram.empty(TTFT_BUCKETS_S),
                Histogram.empty(ITL_BUCKETS_S),
                0.1,
            )
            return httpx.Response(200, text=render_metrics(m, "m").replace("pals:", "other:"))
        if request.url.path == "/pals/batch_limit":
            if request.method == "POST":
                self.max_num_seqs = json.loads(request.content)["max_num_seqs"]
            return httpx.Response(200, json={"max_num_seqs": self.max_num_seqs})
        return httpx.Response(404, json={"detail": "Not Found"})


def _engine(handler: object) -> VLLMEngine:
    client = httpx.Client(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    return VLLMEngine(BASE + "/", client=client)


def test_metrics_scrapes_and_parses() -> None:
    server = FakeVLLM()
    engine = _engine(server.handle)
    first, second = engine.metrics(), engine.metrics()
    assert (first.generation_tokens_total, second.generation_tokens_total) == (100, 200)
    assert second.timestamp_s > first.timestamp_s  # scrape time, as stock vLLM has no clock
    assert second.requests_arrived_total == 1 + 2  # derived: finished + running


def test_batch_limit_round_trip() -> None:
    server = FakeVLLM()
    engine = _engine(server.handle)
    assert engine.get_batch_limit() == 256
    engine.set_batch_limit(32)
    assert server.max_num_seqs == 32
    assert engine.get_batch_limit() == 32
    with pytest.raises(ConfigurationError, match="max_num_seqs must be >= 1"):
        engine.set_batch_limit(0)


def test_errors_name_the_url() -> None:
    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not Found"})

    engine = _engine(not_found)
    with pytest.raises(EngineError, match=r"GET http://vllm.test:8000/pals/batch_limit .*404"):
        engine.set_batch_limit(8)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(EngineError, match=r"GET http://vllm\.test:8000/metrics failed"):
        _engine(refuse).metrics()

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hello</html>")

    with pytest.raises(EngineError, match=r"http://vllm\.test:8000/metrics"):
        _engine(garbage).metrics()
    with pytest.raises(EngineError, match="did not answer"):
        _engine(garbage).set_batch_limit(8)
    with pytest.raises(ConfigurationError, match="base_url"):
        VLLMEngine("vllm.test:8000")


def test_without_a_batch_knob_the_engine_says_how_to_enable_it() -> None:
    """A stock vLLM answers 404 on /pals/batch_limit: the engine reports the fixed start-up
    limit, explains, refuses writes, and asks again after ``reprobe_s``."""
    server = FakeVLLM()
    plugin_loaded = False

    def stock_then_plugin(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/pals/batch_limit" and not plugin_loaded:
            return httpx.Response(404, json={"detail": "Not Found"})
        return server.handle(request)

    client = httpx.Client(transport=httpx.MockTransport(stock_then_plugin))
    engine = VLLMEngine(BASE, client=client, fixed_batch_limit=128, reprobe_s=0.0)
    reason = engine.batch_limit_unavailable_reason()
    assert reason is not None
    assert "404" in reason and "--scheduler-cls pals_core.vllm_plugin.PalsScheduler" in reason
    assert "pals proxy" in reason
    assert engine.get_batch_limit() == 128
    with pytest.raises(EngineError, match="cannot be changed"):
        engine.set_batch_limit(16)
    assert engine.metrics().generation_tokens_total == 100  # metrics still work
    plugin_loaded = True
    assert engine.batch_limit_unavailable_reason() is None
    engine.set_batch_limit(16)
    assert server.max_num_seqs == 16


def test_set_batch_limit_is_clamped_to_the_engines_maximum() -> None:
    server = FakeVLLM()

    def with_maximum(request: httpx.Request) -> httpx.Response:
        response = server.handle(request)
        if request.url.path == "/pals/batch_limit":
            return httpx.Response(
                200, json={"max_num_seqs": server.max_num_seqs, "max_num_seqs_max": 32}
            )
        return response

    engine = _engine(with_maximum)
    assert engine.get_batch_limit() == 256
    assert engine.max_batch_limit == 32
    engine.set_batch_limit(100)
    assert server.max_num_seqs == 32


def test_control_address_over_tcp_and_errors() -> None:
    seen: list[str] = []

    def control(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"max_num_seqs": 7})

    api = httpx.Client(transport=httpx.MockTransport(FakeVLLM().handle))
    channel = httpx.Client(transport=httpx.MockTransport(control))
    engine = VLLMEngine(BASE, control="127.0.0.1:8101", client=api, control_client=channel)
    assert engine.get_batch_limit() == 7
    assert seen[-1] == "http://127.0.0.1:8101/pals/batch_limit"
    with pytest.raises(ConfigurationError, match="PALS_VLLM_CONTROL='nowhere'"):
        VLLMEngine(BASE, control="nowhere", client=api)


@pytest.mark.parametrize(("keepalive_s", "retries"), [(60.0, 1), (0.5, 0)])
def test_a_request_on_a_connection_vllm_is_closing_is_sent_again(
    keepalive_s: float, retries: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM (uvicorn) closes a connection idle 5 s, and a scrape sent just then gets no answer
    (CI: a node profile failed on `Server disconnected without sending a response`). The engine
    drops idle connections first (``KEEPALIVE_S``, 2 s) and, when a request still gets no answer,
    sends it once more: the scrape succeeds either way. With a client keep-alive longer than
    the server's the retry is what saves it (60 s: one retry); with a shorter one none is
    needed."""
    from pals_core.engine import vllm
    from tests.pals_core.proxy.upstream import serve_closing_idle

    metrics_text = FakeVLLM().handle(httpx.Request("GET", BASE + "/metrics")).text.encode()
    monkeypatch.setattr(vllm, "KEEPALIVE_S", keepalive_s)
    with serve_closing_idle(0.3, body=metrics_text, content_type=b"text/plain") as url:
        engine = VLLMEngine(url)
        assert engine.metrics().generation_tokens_total == 100
        time.sleep(0.8)  # idle past the server's keep-alive
        assert engine.metrics().generation_tokens_total == 100
        assert engine.retries == retries
        engine.close()
    with serve_closing_idle(0.3, answer=False) as url:  # never an answer: one retry, then an error
        engine = VLLMEngine(url)
        with pytest.raises(EngineError, match=r"GET .*/metrics failed"):
            engine.metrics()
        assert engine.retries == 1
        engine.close()
