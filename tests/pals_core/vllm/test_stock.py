"""A stock vLLM (started without the PALS plugin): the agent detects it and runs cap-only, and
``pals proxy`` in front of it supplies the batch knob instead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pals_core.engine.vllm import VLLMEngine
from tests.pals_core.vllm import servers
from tests.pals_core.vllm.control_run import profile_pals, run_pals_against
from tests.pals_core.vllm.scenario import run_limit_scenario

pytestmark = pytest.mark.slow
START_MAX_NUM_SEQS = 32


@pytest.fixture(scope="module")
def proxy(vllm_server: servers.Server, log_dir: Path) -> Iterator[servers.Server]:
    server = servers.start_pals(
        ["proxy", "--upstream", vllm_server.base_url, "--max-num-seqs", "32"],
        log_dir / "proxy.log", "/pals/batch_limit",
    )  # fmt: skip
    yield server
    server.stop()


def finished_and_generated(base_url: str) -> tuple[float, float]:
    """(requests finished by length, tokens generated) from vLLM's /metrics."""
    length = generated = 0.0
    for line in httpx.get(base_url + "/metrics").text.splitlines():
        if line.startswith("vllm:request_success_total{") and 'finished_reason="length"' in line:
            length += float(line.rsplit(" ", 1)[1])
        elif line.startswith("vllm:generation_tokens_total{"):
            generated += float(line.rsplit(" ", 1)[1])
    return length, generated


def test_the_engine_detects_a_vllm_without_the_plugin(
    vllm_server: servers.Server, control_dir: Path
) -> None:
    for control in (None, f"unix:{control_dir}/nobody.sock"):
        engine = VLLMEngine(vllm_server.base_url, control=control, fixed_batch_limit=32)
        reason = engine.batch_limit_unavailable_reason()
        assert reason is not None
        assert "--scheduler-cls pals_core.vllm_plugin.PalsScheduler" in reason
        assert "PALS_VLLM_CONTROL" in reason and "pals proxy" in reason
        assert engine.get_batch_limit() == 32
        engine.close()


def test_the_controller_runs_cap_only_against_it(
    vllm_server: servers.Server, sim_node: servers.Server, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    engine = VLLMEngine(vllm_server.base_url, fixed_batch_limit=START_MAX_NUM_SEQS)
    policy = profile_pals(tmp_path, START_MAX_NUM_SEQS)
    with caplog.at_level("WARNING", logger="pals_core.control.runtime"):
        run = run_pals_against(engine, sim_node.base_url, policy, duration_s=9.0)
    assert "running cap-only" in caplog.text and "--scheduler-cls" in caplog.text
    assert not run.load.errors, run.load.errors[:3]
    assert {s.batch_limit for s in run.samples} == {START_MAX_NUM_SEQS}
    assert len({s.power_limits_w for s in run.samples}) >= 2  # the cap still moves
    engine.close()


def test_pals_proxy_enforces_its_limit(vllm_server: servers.Server, proxy: servers.Server) -> None:
    engine = VLLMEngine(proxy.base_url)  # the proxy speaks the batch-limit protocol
    assert engine.batch_limit_unavailable_reason() is None
    result = run_limit_scenario(
        proxy.base_url, vllm_server.base_url + "/metrics", engine.set_batch_limit
    )
    result.check()
    metrics = httpx.get(proxy.base_url + "/metrics").text  # vLLM's, passed through
    assert "\nvllm:num_requests_running{" in metrics and "\npals:batch_limit 16" in metrics
    assert engine.metrics().request_success_total >= 32
    engine.close()


def test_pals_proxy_forwards_a_cancelled_stream(
    vllm_server: servers.Server, proxy: servers.Server
) -> None:
    """The client leaves after two chunks of a 200-token stream: vLLM stops generating (a
    request the proxy kept open would run to its length)."""
    max_tokens = 200
    length_before, generated_before = finished_and_generated(vllm_server.base_url)

    async def read_two_chunks_and_leave() -> None:
        body = {
            "model": servers.SERVED_MODEL, "prompt": "cancel me", "max_tokens": max_tokens,
            "stream": True, "ignore_eos": True,
        }  # fmt: skip
        async with (
            httpx.AsyncClient(timeout=60) as client,
            client.stream("POST", proxy.base_url + "/v1/completions", json=body) as response,
        ):
            seen = 0
            async for line in response.aiter_lines():
                seen += line.startswith("data: ")
                if seen == 2:
                    return

    asyncio.run(read_two_chunks_and_leave())
    time.sleep(3.0)  # ample for the rest of the 200 tokens had the request gone on
    length_after, generated_after = finished_and_generated(vllm_server.base_url)
    assert length_after == length_before, "the cancelled request ran to its length"
    assert 2 <= generated_after - generated_before < max_tokens
    assert httpx.get(proxy.base_url + "/pals/batch_limit").json()["active"] == 0
