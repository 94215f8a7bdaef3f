"""A stock vLLM (started without the PALS plugin): the agent detects it and runs cap-only, and
``pals proxy`` in front of it supplies the batch knob instead."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pals_core.engine.vllm import VLLMEngine
from tests.pals_core.vllm import servers
from tests.pals_core.vllm.control_run import profile_pals, run_pals_against
from tests.pals_core.vllm.load import BackgroundLoad, gauge_value
from tests.pals_core.vllm.scenario import run_limit_scenario

# A vLLM start (in the first test of the module) takes 2-5 minutes on this loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
START_MAX_NUM_SEQS = 32


@pytest.fixture(scope="module")
def proxy(vllm_server: servers.Server, log_dir: Path) -> Iterator[servers.Server]:
    server = servers.start_pals(
        ["proxy", "--upstream", vllm_server.base_url, "--max-num-seqs", "32"],
        log_dir / "proxy.log",
        "/pals/batch_limit",
    )
    yield server
    server.stop()


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
    vllm_server: servers.Server,
    sim_node: servers.Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = VLLMEngine(vllm_server.base_url, fixed_batch_limit=START_MAX_NUM_SEQS)
    policy = profile_pals(tmp_path, START_MAX_NUM_SEQS)
    with caplog.at_level("WARNING", logger="pals_core.control.runtime"):
        run = run_pals_against(engine, sim_node.base_url, policy, duration_s=9.0)
    assert "running cap-only" in caplog.text and "--scheduler-cls" in caplog.text
    assert not run.load.errors, run.load.errors[:3]
    assert {s.batch_limit for s in run.samples} == {START_MAX_NUM_SEQS}
    assert len({s.power_limits_w for s in run.samples}) >= 2  # the cap still moves
    engine.close()


@pytest.mark.flaky(reruns=1, reruns_delay=2)  # timing on a shared CPU, as test_plugin.py's
def test_pals_proxy_enforces_its_limit(vllm_server: servers.Server, proxy: servers.Server) -> None:
    engine = VLLMEngine(proxy.base_url)  # the proxy speaks the batch-limit protocol
    assert engine.batch_limit_unavailable_reason() is None
    # vLLM's own running count is checked against the limits; when the raise took effect comes
    # from the proxy's admission history (what it admitted upstream).
    result = run_limit_scenario(
        proxy.base_url,
        vllm_server.base_url + "/metrics",
        engine.set_batch_limit,
        engine.admission_history,
    )
    print("proxy:", result.figures())
    result.check()
    metrics = httpx.get(proxy.base_url + "/metrics").text  # vLLM's, passed through
    assert "\nvllm:num_requests_running{" in metrics and "\npals:batch_limit 16" in metrics
    assert engine.metrics().request_success_total >= 32
    engine.close()


def _counter(metrics_text: str, name: str) -> float:
    """A vLLM counter summed over its label sets (every ``finished_reason``, every engine)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


# Timing on a shared CPU: in quiet CI runs vLLM made a whole 8,128-token stream (~3 s) before the
# test's steps were done; the stream is now 32,704 tokens (servers.MAX_MODEL_LEN: over 12 s on a
# quiet machine). A proxy that ignores disconnects fails both attempts.
@pytest.mark.flaky(reruns=1, reruns_delay=2)
def test_a_disconnect_through_the_proxy_aborts_the_request_in_vllm(
    vllm_server: servers.Server, proxy: servers.Server
) -> None:
    """A streaming client goes away mid-stream: vLLM stops its request (its own /metrics: no
    longer running, never counted as a success, fewer tokens made than asked for; vLLM 0.32 has
    no abort counter) and the proxy hands the slot on to the request queued behind it.

    Every step says what it saw when it fails: vLLM's running gauge, the proxy's active and
    waiting counts, the stream's status and data lines (an error event is not a token)."""
    engine = VLLMEngine(proxy.base_url)
    metrics_url = vllm_server.base_url + "/metrics"

    def running() -> float:
        return gauge_value(httpx.get(metrics_url).text)

    def seen() -> str:
        state = httpx.get(proxy.base_url + "/pals/batch_limit").json()
        return f"vLLM running {running()}, the proxy {state}"

    max_tokens = servers.MAX_MODEL_LEN - 64  # seconds of streaming if not cut short
    body = {
        "model": servers.SERVED_MODEL,
        "prompt": "power budget",
        "max_tokens": max_tokens,
        "stream": True,
        "ignore_eos": True,
    }
    # vLLM and the proxy idle first: the module's earlier tests may leave streams finishing,
    # which would count in the running gauge and the success counter below.
    assert _wait(lambda: running() == 0, 60.0), f"vLLM busy: {seen()}"
    engine.set_batch_limit(1)
    state = httpx.get(proxy.base_url + "/pals/batch_limit").json()
    assert (state["active"], state["waiting"]) == (0, 0), f"the proxy holds slots: {state}"
    before = httpx.get(metrics_url).text
    queued = BackgroundLoad(proxy.base_url, concurrency=1, max_tokens=8)
    try:
        with httpx.Client(timeout=60) as client:
            with client.stream("POST", proxy.base_url + "/v1/completions", json=body) as response:
                assert response.status_code == 200, (response.status_code, response.read())
                lines = response.iter_lines()  # held: a dropped line iterator closes the stream
                tokens_seen = []
                for line in lines:
                    if not line.startswith("data: "):
                        continue
                    event = json.loads(line.removeprefix("data: "))
                    assert event.get("object") == "text_completion", f"not a token: {line}"
                    tokens_seen.append(event["choices"][0]["text"])
                    if len(tokens_seen) >= 3:
                        break
                assert len(tokens_seen) == 3, f"the stream ended early: {tokens_seen}, {seen()}"
                if running() == 0 and _counter(
                    httpx.get(metrics_url).text, "vllm:request_success_total"
                ) > _counter(before, "vllm:request_success_total"):
                    # Before the client read its third token, vLLM had made all of them: there is
                    # nothing left to abort, whatever the proxy does (a fast quiet machine).
                    pytest.skip(f"vLLM finished all {max_tokens} tokens before 3 were read")
                assert _wait(lambda: running() == 1), f"not running in vLLM: {seen()}"
                queued.start(most=1)  # a second request waits in the proxy for the only slot
                assert _wait(
                    lambda: httpx.get(proxy.base_url + "/pals/batch_limit").json()["waiting"]
                ), f"nothing queued in the proxy: {seen()}"
            closed_s = time.monotonic()  # leaving the block closed the connection mid-stream
        assert _wait(lambda: queued.completed >= 1), (
            f"the queued request never got the slot: {seen()}, {queued.errors}"
        )
        handed_on_s = time.monotonic() - closed_s
    finally:
        queued.stop()
    assert _wait(lambda: running() == 0), f"still running in vLLM: {seen()}"
    after = httpx.get(metrics_url).text
    successes = _counter(after, "vllm:request_success_total") - _counter(
        before, "vllm:request_success_total"
    )
    assert successes == queued.completed, "the disconnected request was counted as finished"
    tokens = _counter(after, "vllm:generation_tokens_total") - _counter(
        before, "vllm:generation_tokens_total"
    )
    cut_short = tokens - 8 * queued.completed
    assert 3 <= cut_short < max_tokens, f"{cut_short} tokens made for the disconnected request"
    state = httpx.get(proxy.base_url + "/pals/batch_limit").json()
    assert (state["active"], state["waiting"]) == (0, 0)  # every slot freed
    assert not queued.errors, queued.errors
    print(
        f"proxy disconnect: the slot went to the queued request {handed_on_s * 1000:.0f} ms "
        f"after it; vLLM made {cut_short:.0f} of {max_tokens} tokens for the disconnected one"
    )
    engine.set_batch_limit(START_MAX_NUM_SEQS)
    engine.close()


def _wait(condition: Callable[[], object], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())
