"""Behaviour of the simulated engine: submitted requests stream tokens, batching obeys the limit,
the KV cache bounds the batch, metrics follow vLLM's semantics."""

from __future__ import annotations

import pytest

from pals_core.errors import ConfigurationError
from pals_core.sim import PoissonWorkload, SaturatingWorkload, build_sim_node


def test_submitted_request_streams_tokens_then_finishes() -> None:
    node = build_sim_node(model="llama-3.1-8b", gpu="H100-SXM", seed=1)
    req = node.engine.submit(prompt_tokens=200, output_tokens=50)
    assert req.tokens_emitted == 0 and req.first_token_s is None and not req.finished
    node.clock.sleep(0.05)
    seen = req.tokens_emitted
    assert req.first_token_s is not None and req.first_token_s >= req.arrival_s
    assert 0 < seen < 50
    node.clock.sleep(2.0)
    assert req.finished and req.tokens_emitted == 50
    times = req.token_times_s()
    assert len(times) == 50 and times == sorted(times)
    assert times[0] == req.first_token_s and times[-1] == req.finish_s
    assert req.token_times_s(seen) == times[seen:]
    m = node.engine.metrics()
    assert m.request_success_total == 1 and m.generation_tokens_total == 50
    assert m.prompt_tokens_total == 200 and m.requests_arrived_total == 1
    assert m.time_to_first_token_seconds.count == 1
    assert m.inter_token_latency_seconds.count == 49


def test_submit_refuses_bad_lengths() -> None:
    node = build_sim_node(seed=1)
    with pytest.raises(ConfigurationError, match="output_tokens"):
        node.engine.submit(prompt_tokens=10, output_tokens=0)


def test_batch_limit_bounds_running_and_lowering_it_admits_none() -> None:
    node = build_sim_node(workload=SaturatingWorkload(), batch_limit=64, seed=2)
    node.clock.sleep(5.0)
    m = node.engine.metrics()
    assert m.num_requests_running == 64 and m.num_requests_waiting > 0
    node.engine.set_batch_limit(16)
    arrived_done = m.request_success_total
    node.clock.sleep(0.2)
    assert node.engine.metrics().num_requests_running <= 64
    node.clock.sleep(60.0)
    m2 = node.engine.metrics()
    assert m2.num_requests_running == 16 and m2.request_success_total > arrived_done
    with pytest.raises(ConfigurationError, match="max_num_seqs"):
        node.engine.set_batch_limit(0)


def test_kv_cache_limits_the_batch_at_large_limits() -> None:
    node = build_sim_node(workload=SaturatingWorkload(), batch_limit=2048, seed=3)
    node.clock.sleep(120.0)
    m = node.engine.metrics()
    assert m.num_requests_running < 2048
    assert m.kv_cache_usage_perc > 0.9


def test_poisson_load_is_served_and_counted() -> None:
    node = build_sim_node(workload=PoissonWorkload(rate_req_s=4.0), seed=4)
    node.clock.sleep(120.0)
    m = node.engine.metrics()
    assert 350 < m.requests_arrived_total < 620
    assert m.request_success_total >= m.requests_arrived_total - 20
    assert m.prompt_tokens_arrived_total >= m.prompt_tokens_total
    assert m.inter_token_latency_seconds.quantile(0.5) < 0.05


@pytest.mark.parametrize("variation", [0.0, 0.03])
def test_jumping_decode_stretches_matches_stepping_one_by_one(
    monkeypatch: pytest.MonkeyPatch, variation: float
) -> None:
    from pals_core.sim.engine import SimEngine

    def run() -> tuple[object, ...]:
        node = build_sim_node(
            "llama-3.1-70b",
            num_gpus=4,
            workload=PoissonWorkload(rate_req_s=8.0),
            seed=1,
            device_variation_frac=variation,
        )
        req = node.engine.submit(prompt_tokens=100, output_tokens=400)
        for _ in range(300):
            node.clock.sleep(0.1)
        m = node.engine.metrics()
        return (
            node.engine.stats().steps,
            m.generation_tokens_total,
            m.request_success_total,
            m.inter_token_latency_seconds.bucket_counts,
            tuple(round(e, 3) for e in node.gpus.get_energy_j()),
            tuple(round(t, 9) for t in req.token_times_s()),
        )

    jumped = run()
    monkeypatch.setattr(SimEngine, "_jump_decode_steps", lambda self, target_s: False)
    assert run() == jumped


def test_long_runs_keep_only_live_requests() -> None:
    node = build_sim_node(workload=PoissonWorkload(rate_req_s=15.0), seed=9)
    for _ in range(12):
        node.clock.sleep(100.0)
        m = node.engine.metrics()
        engine = node.engine
        live = len(engine._waiting) + len(engine._prefilling) + len(engine._decoding)
        assert live == m.num_requests_running + m.num_requests_waiting
        assert len(engine._heap) <= 2 * engine.get_batch_limit()
        assert not engine._tracked
    assert m.request_success_total > 15000
