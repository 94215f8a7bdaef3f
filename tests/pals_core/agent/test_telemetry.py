"""Per-second samples from the ticks; the on-disk spool keeps them, bounded, until acked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pals_core.agent.spool import TelemetrySpool
from pals_core.agent.telemetry import TelemetryRecorder
from pals_core.control.qos import QoSPolicy
from pals_core.engine.base import EngineMetrics, Histogram

BOUNDS = (0.01, 0.05, 0.1, 1.0)


def _metrics(t_s: float, tokens: int) -> EngineMetrics:
    empty = Histogram.empty(BOUNDS)
    return EngineMetrics(
        timestamp_s=t_s,
        generation_tokens_total=tokens,
        prompt_tokens_total=0,
        num_requests_running=4,
        num_requests_waiting=2,
        request_success_total=0,
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
    assert recorder.take() == []


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
