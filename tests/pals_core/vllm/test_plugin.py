"""The PALS scheduler plugin in a real vLLM (CPU build, tiny model): the batch limit changes at
run time through the control channel, and the controller drives it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pals_core.engine import prometheus
from pals_core.engine.vllm import VLLMEngine
from pals_core.errors import EngineError
from tests.pals_core.vllm import servers
from tests.pals_core.vllm.control_run import profile_pals, run_pals_against
from tests.pals_core.vllm.load import stream_completion
from tests.pals_core.vllm.scenario import run_limit_scenario

pytestmark = pytest.mark.slow
START_MAX_NUM_SEQS = 32
WITH_PLUGIN = True


@pytest.fixture(scope="module")
def control(control_dir: Path) -> str:
    return servers.control_address(control_dir)


@pytest.fixture
def engine(vllm_server: servers.Server, control: str) -> Iterator[VLLMEngine]:
    engine = VLLMEngine(vllm_server.base_url, control=control, fixed_batch_limit=START_MAX_NUM_SEQS)
    yield engine
    engine.set_batch_limit(START_MAX_NUM_SEQS)
    engine.close()


# Timing on a CPU vLLM under a busy 2-core machine: a missed observation of the rise is
# retried; an observation over the limit fails at once and is never retried away.
@pytest.mark.flaky(reruns=2, rerun_except="running under a limit of")
def test_batch_limit_changes_at_run_time(vllm_server: servers.Server, engine: VLLMEngine) -> None:
    assert engine.batch_limit_unavailable_reason() is None
    result = run_limit_scenario(
        vllm_server.base_url, vllm_server.base_url + "/metrics", engine.set_batch_limit
    )
    result.check()
    assert engine.get_batch_limit() == 16


def test_the_channel_refuses_limits_vllm_cannot_take(engine: VLLMEngine) -> None:
    engine.get_batch_limit()
    assert engine.max_batch_limit == START_MAX_NUM_SEQS
    engine.set_batch_limit(1000)  # clamped to the start-up --max-num-seqs
    assert engine.get_batch_limit() == START_MAX_NUM_SEQS
    with httpx.Client(transport=httpx.HTTPTransport(uds=engine_socket(engine))) as raw:
        answer = raw.post("http://x/pals/batch_limit", json={"max_num_seqs": 33})
        assert answer.status_code == 400 and "within [1, 32]" in answer.text
        assert raw.post("http://x/pals/batch_limit", json={"max_num_seqs": 0}).status_code == 400
        assert raw.get("http://x/pals/batch_limit").json()["vllm_version"] == "0.32.0"


def engine_socket(engine: VLLMEngine) -> str:
    transport = engine._control._transport  # the Unix-socket transport the engine built
    return str(transport._pool._uds)  # type: ignore[attr-defined]


def test_engine_parses_the_real_metrics(vllm_server: servers.Server, engine: VLLMEngine) -> None:
    async def some_requests() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            await asyncio.gather(
                *(stream_completion(client, vllm_server.base_url, 8) for _ in range(3))
            )

    before = engine.metrics()
    asyncio.run(some_requests())
    after = engine.metrics()
    text = httpx.get(vllm_server.base_url + "/metrics").text
    for name in (
        prometheus.GENERATION_TOKENS + "_total",
        prometheus.PROMPT_TOKENS + "_total",
        prometheus.RUNNING,
        prometheus.WAITING,
        prometheus.REQUEST_SUCCESS + "_total",
        prometheus.TTFT + "_bucket",
        prometheus.ITL + "_bucket",
        prometheus.KV_CACHE_USAGE,
        prometheus.PROMPT_TOKENS_PER_REQUEST + "_sum",
    ):
        assert f"\n{name}{{" in text, f"vLLM's /metrics has no {name}"
    assert after.generation_tokens_total - before.generation_tokens_total == 3 * 8
    assert after.request_success_total - before.request_success_total == 3
    assert after.prompt_tokens_total > before.prompt_tokens_total
    assert after.time_to_first_token_seconds.count - before.time_to_first_token_seconds.count == 3
    assert after.inter_token_latency_seconds.count > before.inter_token_latency_seconds.count
    assert after.num_requests_running == 0 and after.num_requests_waiting == 0
    assert 0.0 <= after.kv_cache_usage_perc <= 1.0
    assert after.requests_arrived_total >= after.request_success_total


def test_engine_without_a_listener_on_the_control_address(vllm_server: servers.Server) -> None:
    engine = VLLMEngine(vllm_server.base_url, control="unix:/nonexistent/pals.sock")
    reason = engine.batch_limit_unavailable_reason()
    assert reason is not None and "--scheduler-cls" in reason
    with pytest.raises(EngineError, match="cannot be changed"):
        engine.set_batch_limit(8)
    engine.close()


def test_pals_controls_the_real_server_for_60_s(
    vllm_server: servers.Server, engine: VLLMEngine, sim_node: servers.Server, tmp_path: Path
) -> None:
    """The agent's loop: PALS reads the real vLLM's /metrics and simulated GPUs, and sets caps
    and the batch limit as it decides, for 60 s without an error."""
    policy = profile_pals(tmp_path, START_MAX_NUM_SEQS)
    run = run_pals_against(engine, sim_node.base_url, policy, duration_s=60.0)
    assert not run.load.errors, run.load.errors[:3]
    assert run.load.completed > 50
    assert len(run.samples) == 120  # every tick of 0.5 s ran
    batches = [s.batch_limit for s in run.samples]
    assert len(set(batches)) >= 2, f"PALS never changed the batch limit: {batches}"
    assert engine.get_batch_limit() == batches[-1]  # what PALS set is what vLLM admits with
    assert all(1 <= b <= START_MAX_NUM_SEQS for b in batches)
    assert {s.generation_tokens_total for s in run.samples} != {0}
