"""`pals sim-node` over real HTTP: a uvicorn server on a free loopback port, paced to wall time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pals_core.engine.vllm import VLLMEngine
from pals_core.errors import ConfigurationError
from pals_core.sim.server import SimNodeConfig
from tests.pals_core.sim.live_server import serve_sim_node

MODEL = "llama-3.1-8b"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_sim_node(SimNodeConfig(model=MODEL, batch_limit=256)) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=20) as c:
        yield c


def _scrape(client: httpx.Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> labels -> value, parsed by prometheus_client's own parser."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _one(samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str) -> float:
    (value,) = samples[name].values()
    return value


def test_streaming_completion_arrives_token_by_token(client: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "prompt": "x" * 400,
        "max_tokens": 40,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    arrivals: list[tuple[float, str]] = []
    with client.stream("POST", "/v1/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                arrivals.append((time.monotonic(), line))
    lines = [line for _, line in arrivals]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    tokens = [c for c in chunks if c["choices"]]
    assert len(tokens) == 40
    assert all(c["object"] == "text_completion" and c["model"] == MODEL for c in chunks)
    assert [c["choices"][0]["finish_reason"] for c in tokens] == [None] * 39 + ["length"]
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
    }
    # paced by the simulator (~8 ms per token here): 40 tokens arrive over ~0.3 s in many
    # pacing steps, not in one burst at the end
    token_times = [t for (t, line) in arrivals if '"text"' in line]
    assert token_times[-1] - token_times[0] > 0.15
    assert len({round(t, 3) for t in token_times}) >= 5


def test_completion_and_chat_bodies(client: httpx.Client) -> None:
    r = client.post("/v1/completions", json={"prompt": "hello world, " * 10})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "text_completion"
    assert data["usage"] == {"prompt_tokens": 33, "completion_tokens": 16, "total_tokens": 49}
    assert data["choices"][0]["finish_reason"] == "length" and data["choices"][0]["text"]

    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi" * 20}]
    r = client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 5})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert data["usage"]["completion_tokens"] == 5
    assert data["usage"]["prompt_tokens"] == 4 + 2 + 4 + 10

    with client.stream(
        "POST", "/v1/chat/completions", json={"messages": messages, "max_tokens": 3, "stream": True}
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert lines[-1] == "data: [DONE]"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks[1:]] == [None, None, "length"]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/v1/completions", {"max_tokens": 4}, 400, "prompt"),
        ("/v1/completions", {"prompt": 5}, 400, "prompt"),
        ("/v1/completions", {"prompt": "a", "max_tokens": 0}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": "a", "max_tokens": "many"}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": "a", "n": 2}, 400, "n"),
        ("/v1/completions", {"prompt": ["a", "b"]}, 400, "prompt"),
        ("/v1/completions", {"prompt": "a", "max_tokens": 10**6}, 400, "max_tokens"),
        ("/v1/completions", {"prompt": "a", "model": "gpt-9"}, 404, "model"),
        ("/v1/chat/completions", {"messages": []}, 400, "messages"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "bot", "content": "x"}]},
            400,
            "messages.0.role",
        ),
        ("/pals/batch_limit", {"max_num_seqs": 0}, 400, "max_num_seqs"),
        ("/pals/power_limit", {"watts": 50}, 400, "watts"),
        ("/pals/power_limit", {"watts": 500, "gpu": 3}, 400, "gpu"),
    ],
)
def test_bad_requests_name_the_field(
    client: httpx.Client, path: str, body: dict[str, object], status: int, param: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    error = r.json()
    assert error["object"] == "error" and error["code"] == status
    assert error["param"] == param
    assert param.split(".")[0] in error["message"]


def test_metrics_move_under_load(client: httpx.Client) -> None:
    before = _scrape(client)
    gen_before = _one(before, "vllm:generation_tokens_total")
    assert before["vllm:num_requests_running"]
    body = {"model": MODEL, "prompt": "y" * 200, "max_tokens": 60}
    running_seen: list[float] = []
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client.post, "/v1/completions", json=body) for _ in range(8)]
        while not all(f.done() for f in futures):
            running_seen.append(_one(_scrape(client), "vllm:num_requests_running"))
            time.sleep(0.02)
        assert all(f.result().status_code == 200 for f in futures)
    after = _scrape(client)
    assert max(running_seen) >= 2
    assert _one(after, "vllm:num_requests_running") == 0
    assert _one(after, "vllm:generation_tokens_total") >= gen_before + 8 * 60
    assert _one(after, "vllm:request_success_total") >= 8
    assert _one(after, "vllm:time_to_first_token_seconds_count") >= 8
    assert _one(after, "pals_sim:gpu_power_watts") > 0
    assert ("gpu", "0") in next(iter(after["pals_sim:gpu_power_watts"]))
    labels = dict(next(iter(after["vllm:generation_tokens_total"])))
    assert labels == {"model_name": MODEL, "engine": "0"}


def test_health_and_models(client: httpx.Client) -> None:
    assert client.get("/health").status_code == 200
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == [MODEL]


def test_vllm_adapter_drives_the_sim_node(base_url: str, client: httpx.Client) -> None:
    engine = VLLMEngine(base_url)
    try:
        assert engine.get_batch_limit() == 256
        engine.set_batch_limit(8)
        assert engine.get_batch_limit() == 8
        assert _one(_scrape(client), "pals:batch_limit") == 8
        first = engine.metrics()
        time.sleep(0.1)
        second = engine.metrics()
        assert second.timestamp_s > first.timestamp_s  # the node's own (paced) clock
        assert second.generation_tokens_total >= first.generation_tokens_total
        r = client.post("/pals/power_limit", json={"watts": 400})
        assert r.status_code == 200 and r.json()["power_limits_w"] == [400.0]
        assert _one(_scrape(client), "pals_sim:gpu_power_limit_watts") == 400.0
    finally:
        engine.set_batch_limit(256)
        client.post("/pals/power_limit", json={"watts": 700})
        engine.close()


def test_config_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="load must be one of"):
        SimNodeConfig(load="sometimes")
    with pytest.raises(ConfigurationError, match="rate_req_s"):
        SimNodeConfig(load="poisson", rate_req_s=0)


def test_metrics_have_vllms_request_latency_histograms(client: httpx.Client) -> None:
    before = _scrape(client)
    start = time.monotonic()
    body = {"model": MODEL, "prompt": "x" * 200, "max_tokens": 20}
    assert client.post("/v1/completions", json=body).status_code == 200
    elapsed_s = time.monotonic() - start
    after = _scrape(client)
    names = (
        "vllm:e2e_request_latency_seconds",
        "vllm:request_queue_time_seconds",
        "vllm:request_prefill_time_seconds",
        "vllm:request_decode_time_seconds",
    )
    for name in names:
        assert _one(after, name + "_count") >= _one(before, name + "_count") + 1, name
        buckets = after[name + "_bucket"]
        assert max(buckets.values()) == _one(after, name + "_count")  # +Inf bucket = count
    e2e_sum = _one(after, "vllm:e2e_request_latency_seconds_sum")
    e2e_before = _one(before, "vllm:e2e_request_latency_seconds_sum")
    assert 0 < e2e_sum - e2e_before <= elapsed_s + 0.5
