"""The vLLM adapter over HTTP: scraping, the batch-limit admin endpoint, and its errors."""

from __future__ import annotations

import json

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
                0.0, self.generated, 10, 2, 0, 1,
                Histogram.empty(TTFT_BUCKETS_S), Histogram.empty(ITL_BUCKETS_S), 0.1,
            )  # fmt: skip
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

    with pytest.raises(EngineError, match=r"GET http://vllm.test:8000/pals/batch_limit .*404"):
        _engine(not_found).get_batch_limit()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(EngineError, match=r"GET http://vllm\.test:8000/metrics failed"):
        _engine(refuse).metrics()

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hello</html>")

    with pytest.raises(EngineError, match=r"http://vllm\.test:8000/metrics"):
        _engine(garbage).metrics()
    with pytest.raises(EngineError, match="did not answer"):
        _engine(garbage).get_batch_limit()
    with pytest.raises(ConfigurationError, match="base_url"):
        VLLMEngine("vllm.test:8000")
