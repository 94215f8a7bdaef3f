"""vLLM's ``/metrics`` in both directions: render an :class:`EngineMetrics` as vLLM would expose
it (the simulated node serves this), and parse a scrape back (the real-vLLM adapter uses this).

Names, types and labels follow vLLM's V1 ``PrometheusStatLogger`` (``vllm/v1/metrics/loggers.py``):
every series carries ``model_name`` and ``engine`` (the engine-core index, "0" here), and
``vllm:request_success_total`` is split by ``finished_reason``. A scrape of several engines
(data parallel) is summed, their KV-cache usage averaged.

Metrics vLLM does not have use the ``pals:`` prefix so nobody mistakes them for vLLM's:
``pals:requests_arrived_total``, ``pals:prompt_tokens_arrived_total`` (offered load),
``pals:engine_clock_seconds`` (the engine's clock, for ``EngineMetrics.timestamp_s``) and
``pals:batch_limit`` (``max_num_seqs``). Against a stock vLLM, the parser derives the offered load
(see :func:`parse_metrics`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from pals_core.engine.base import EngineMetrics, Histogram
from pals_core.errors import EngineError

GENERATION_TOKENS = "vllm:generation_tokens"
PROMPT_TOKENS = "vllm:prompt_tokens"
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
REQUEST_SUCCESS = "vllm:request_success"
TTFT = "vllm:time_to_first_token_seconds"
ITL = "vllm:inter_token_latency_seconds"
ITL_BEFORE_0_10 = "vllm:time_per_output_token_seconds"  # vLLM < 0.10 named the ITL this
KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
KV_CACHE_USAGE_BEFORE_0_9 = "vllm:gpu_cache_usage_perc"
PROMPT_TOKENS_PER_REQUEST = "vllm:request_prompt_tokens"
REQUESTS_ARRIVED = "pals:requests_arrived"
PROMPT_TOKENS_ARRIVED = "pals:prompt_tokens_arrived"
ENGINE_CLOCK = "pals:engine_clock_seconds"
BATCH_LIMIT = "pals:batch_limit"

LABELS = ("model_name", "engine")
ENGINE_INDEX = "0"


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _histogram_family(name: str, doc: str, labels: list[str], h: Histogram) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=list(LABELS))
    buckets = [(_le(b), float(c)) for b, c in zip(h.upper_bounds_s, h.bucket_counts, strict=True)]
    buckets.append(("+Inf", float(h.count)))
    family.add_metric(labels, buckets, h.sum_s)
    return family


@dataclass(eq=False)  # registries hash their collectors
class _SnapshotCollector(Collector):
    metrics: EngineMetrics
    model_name: str
    batch_limit: int | None
    extra: list[Metric] = field(default_factory=list)

    def collect(self) -> Iterator[Metric]:
        m, labels = self.metrics, [self.model_name, ENGINE_INDEX]

        def gauge(name: str, doc: str, value: float) -> Metric:
            family = GaugeMetricFamily(name, doc, labels=list(LABELS))
            family.add_metric(labels, value)
            return family

        def counter(name: str, doc: str, value: float) -> Metric:
            family = CounterMetricFamily(name, doc, labels=list(LABELS))
            family.add_metric(labels, value)
            return family

        yield gauge(
            RUNNING, "Number of requests in model execution batches.", m.num_requests_running
        )
        yield gauge(WAITING, "Number of requests waiting to be processed.", m.num_requests_waiting)
        yield gauge(
            KV_CACHE_USAGE, "KV-cache usage. 1 means 100 percent usage.", m.kv_cache_usage_perc
        )
        yield counter(PROMPT_TOKENS, "Number of prefill tokens processed.", m.prompt_tokens_total)
        yield counter(
            GENERATION_TOKENS, "Number of generation tokens processed.", m.generation_tokens_total
        )
        success = CounterMetricFamily(
            REQUEST_SUCCESS,
            "Count of successfully processed requests.",
            labels=[*LABELS, "finished_reason"],
        )
        # The simulator finishes every request at its max_tokens, which vLLM reports as "length".
        success.add_metric([*labels, "length"], m.request_success_total)
        yield success
        yield _histogram_family(
            TTFT,
            "Histogram of time to first token in seconds.",
            labels,
            m.time_to_first_token_seconds,
        )
        yield _histogram_family(
            ITL,
            "Histogram of inter-token latency in seconds.",
            labels,
            m.inter_token_latency_seconds,
        )
        yield counter(
            REQUESTS_ARRIVED,
            "PALS: requests received (finished, running, waiting or aborted).",
            m.requests_arrived_total,
        )
        yield counter(
            PROMPT_TOKENS_ARRIVED,
            "PALS: prompt tokens of every request received, admitted or not.",
            m.prompt_tokens_arrived_total,
        )
        yield gauge(ENGINE_CLOCK, "PALS: the engine's clock when sampled (s).", m.timestamp_s)
        if self.batch_limit is not None:
            yield gauge(BATCH_LIMIT, "PALS: max_num_seqs in force.", self.batch_limit)
        yield from self.extra


def render_metrics(
    metrics: EngineMetrics,
    model_name: str,
    batch_limit: int | None = None,
    extra: Iterable[Metric] = (),
) -> str:
    """Prometheus text exposition of one snapshot, as vLLM's ``/metrics`` shows it.

    ``extra`` metric families (e.g. the simulated node's GPU power) are appended."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(metrics, model_name, batch_limit, list(extra)))
    return generate_latest(registry).decode()


# -- parsing -------------------------------------------------------------------------------------


def _families(text: str) -> dict[str, Metric]:
    try:
        return {f.name: f for f in text_string_to_metric_families(text)}
    except ValueError as err:
        raise EngineError(f"cannot parse the Prometheus metrics text: {err}") from err


def _sum(families: dict[str, Metric], *names: str, suffix: str = "") -> float | None:
    """The sum over every label set of the first of ``names`` present (None if none is)."""
    for name in names:
        family = families.get(name)
        if family is not None:
            return sum(s.value for s in family.samples if s.name == name + suffix)
    return None


def _require(value: float | None, what: str) -> float:
    if value is None:
        raise EngineError(f"the metrics text has no {what}: is this a vLLM /metrics endpoint?")
    return value


def _histogram(families: dict[str, Metric], *names: str) -> Histogram:
    for name in names:
        family = families.get(name)
        if family is None:
            continue
        by_bound: dict[float, float] = {}
        count = total_s = 0.0
        for s in family.samples:
            if s.name == name + "_bucket":
                bound = float(s.labels["le"])
                by_bound[bound] = by_bound.get(bound, 0.0) + s.value
            elif s.name == name + "_count":
                count += s.value
            elif s.name == name + "_sum":
                total_s += s.value
        bounds = sorted(b for b in by_bound if not math.isinf(b))
        return Histogram(
            tuple(bounds), tuple(round(by_bound[b]) for b in bounds), round(count), total_s
        )
    raise EngineError(f"the metrics text has no histogram {' or '.join(names)}")


def parse_metrics(text: str, *, timestamp_s: float | None = None) -> EngineMetrics:
    """An :class:`EngineMetrics` from a vLLM (or ``pals sim-node``) ``/metrics`` scrape.

    ``timestamp_s``: the engine's ``pals:engine_clock_seconds`` when present, else the value
    given, else ``time.monotonic()`` now. Accepts vLLM's older names
    (``vllm:time_per_output_token_seconds`` before 0.10, ``vllm:gpu_cache_usage_perc`` before 0.9).

    A stock vLLM has no offered-load counters, so they are derived: requests arrived = finished
    (all reasons, aborts included) + running + waiting; prompt tokens arrived = prompt tokens
    prefilled + waiting requests x the mean prompt length (``vllm:request_prompt_tokens``).
    """
    f = _families(text)
    generation = _require(_sum(f, GENERATION_TOKENS, suffix="_total"), GENERATION_TOKENS + "_total")
    prompt = _require(_sum(f, PROMPT_TOKENS, suffix="_total"), PROMPT_TOKENS + "_total")
    running = _require(_sum(f, RUNNING), RUNNING)
    waiting = _require(_sum(f, WAITING), WAITING)
    success = _require(_sum(f, REQUEST_SUCCESS, suffix="_total"), REQUEST_SUCCESS + "_total")
    kv_family = f.get(KV_CACHE_USAGE) or f.get(KV_CACHE_USAGE_BEFORE_0_9)
    if kv_family is None or not kv_family.samples:
        raise EngineError(f"the metrics text has no {KV_CACHE_USAGE}")
    kv = sum(s.value for s in kv_family.samples) / len(kv_family.samples)

    arrived = _sum(f, REQUESTS_ARRIVED, suffix="_total")
    if arrived is None:
        arrived = success + running + waiting
    prompt_arrived = _sum(f, PROMPT_TOKENS_ARRIVED, suffix="_total")
    if prompt_arrived is None:
        per_request_sum = _sum(f, PROMPT_TOKENS_PER_REQUEST, suffix="_sum") or 0.0
        per_request_count = _sum(f, PROMPT_TOKENS_PER_REQUEST, suffix="_count") or 0.0
        mean_prompt = per_request_sum / per_request_count if per_request_count else 0.0
        prompt_arrived = prompt + waiting * mean_prompt

    clock_family = f.get(ENGINE_CLOCK)
    clock = max((s.value for s in clock_family.samples), default=None) if clock_family else None
    if clock is None:
        clock = timestamp_s if timestamp_s is not None else time.monotonic()
    return EngineMetrics(
        timestamp_s=clock,
        generation_tokens_total=round(generation),
        prompt_tokens_total=round(prompt),
        num_requests_running=round(running),
        num_requests_waiting=round(waiting),
        request_success_total=round(success),
        time_to_first_token_seconds=_histogram(f, TTFT),
        inter_token_latency_seconds=_histogram(f, ITL, ITL_BEFORE_0_10),
        kv_cache_usage_perc=kv,
        requests_arrived_total=round(arrived),
        prompt_tokens_arrived_total=round(prompt_arrived),
    )


def parse_batch_limit(text: str) -> int | None:
    """``pals:batch_limit`` from a scrape, if the engine exports it."""
    value = _sum(_families(text), BATCH_LIMIT)
    return None if value is None else round(value)
