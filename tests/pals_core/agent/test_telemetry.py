"""Per-second samples from the ticks; the on-disk spool keeps them, bounded, until acked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pals_core.agent.spool import TelemetrySpool
from pals_core.agent.telemetry import TelemetryRecorder, offered_tok_s
from pals_core.control.demand import mean_output_tok
from pals_core.control.qos import QoSPolicy
from pals_core.engine.base import EngineMetrics, Histogram

BOUNDS = (0.01, 0.05, 0.1, 1.0)


def _metrics(t_s: float, tokens: int, waiting: int = 2, finished: int = 0) -> EngineMetrics:
    empty = Histogram.empty(BOUNDS)
    return EngineMetrics(
        timestamp_s=t_s,
        generation_tokens_total=tokens,
        prompt_tokens_total=0,
        num_requests_running=4,
        num_requests_waiting=waiting,
        request_success_total=finished,
        time_to_first_token_seconds=empty,
        inter_token_latency_seconds=empty,
        kv_cache_usage_perc=0.1,
    )


def test_one_sample_per_second_from_the_counters() -> None:
    recorder = TelemetryRecorder(QoSPolicy(itl_p99_slo_s=0.1), run_id="r1")
    wall0 = 1_800_000_000.0
    for tick in range(31):  # 3 s of 0.1 s ticks at 300 W and 1000 tok/s
        t = tick * 0.1
        recorder.record(
            wall0 + t + 0.05,
            energy_j=300.0 * t,
            metrics=_metrics(t, int(1000 * t)),
            power_limits_w=(350.0, 340.0),
            batch_limit=64,
            mode="tracking",
        )
    samples = recorder.take()
    assert [s.sample_id for s in samples] == ["r1-1", "r1-2", "r1-3"]
    assert samples[0].ts.startswith("2027-01-15T08:00:00")
    for sample in samples:
        assert abs(sample.power_w - 300.0) < 1e-6
        assert abs(sample.throughput_tok_s - 1000.0) < 20
        assert sample.power_cap_w == 690.0 and sample.gpu_power_caps_w == (350.0, 340.0)
        assert sample.batch_limit == 64 and sample.requests_waiting == 2
        assert abs(sample.demand_tok_s - 1000.0) < 20  # a steady queue: demand = served
    assert recorder.take() == []


def test_demand_is_the_served_rate_plus_the_queue_growth_in_tokens() -> None:
    """1000 tok/s served, 5 requests finished and 2 more queued every second: the demand is
    1000 tok/s plus 2 requests' worth of tokens per second at the mean output length so far."""
    recorder = TelemetryRecorder(QoSPolicy(itl_p99_slo_s=0.1), run_id="d")
    wall0 = 1_800_000_000.0
    for tick in range(41):
        t = tick * 0.1
        metrics = _metrics(t, int(1000 * t), waiting=int(2 * t), finished=int(5 * t))
        recorder.record(
            wall0 + t + 0.05,
            energy_j=300.0 * t,
            metrics=metrics,
            power_limits_w=(350.0,),
            batch_limit=64,
            mode="tracking",
        )
    samples = recorder.take()
    assert len(samples) == 4
    for end_s, sample in zip((1.05, 2.05, 3.05, 4.05), samples, strict=True):
        t = round(end_s, 1)
        mean_out = mean_output_tok(int(1000 * t), int(5 * t), 4)  # as the recorder counts
        assert abs(sample.demand_tok_s - (1000.0 + 2 * mean_out)) < 0.05 * (1000 + 2 * mean_out)
        assert sample.demand_tok_s > sample.throughput_tok_s
    assert offered_tok_s(500.0, -10, 100.0, 1.0) == 0.0  # a drained queue: never negative
    assert offered_tok_s(500.0, 3, 0.0, 1.0) == 500.0  # no mean length yet: the served rate


def test_the_spool_is_bounded_counts_drops_and_survives_a_restart(tmp_path: Path) -> None:
    recorder = TelemetryRecorder(QoSPolicy(itl_p99_slo_s=0.1), run_id="r")
    for second in range(12):
        recorder.record(
            1_800_000_000.0 + second,
            energy_j=second * 100.0,
            metrics=_metrics(second, 0),
            power_limits_w=(300.0,),
            batch_limit=8,
            mode="m",
        )
    samples = recorder.take()
    assert len(samples) == 11
    path = tmp_path / "spool.db"
    spool = TelemetrySpool(path, max_samples=8)
    spool.append({"a": samples[:5], "b": samples[:2]})
    spool.append({"a": samples[5:]})
    assert spool.count("a") == 8 and spool.dropped == {"a": 3}
    seq, oldest = spool.oldest("a", 3)
    assert [s["sample_id"] for s in oldest] == ["r-4", "r-5", "r-6"]  # oldest kept, in order
    spool.ack("a", seq)
    spool.close()

    reopened = TelemetrySpool(path, max_samples=8)
    assert reopened.count("a") == 5 and reopened.count("b") == 2
    _seq, rest = reopened.oldest("a", 100)
    assert [s["sample_id"] for s in rest] == [f"r-{i}" for i in range(7, 12)]
    assert replace(samples[0]).to_json()["gpu_power_caps_w"] == [300.0]
