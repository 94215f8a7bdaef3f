"""A stock vLLM (started without the PALS plugin): the agent detects it and runs cap-only, and
``pals proxy`` in front of it supplies the batch knob instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pals_core.engine.vllm import VLLMEngine
from tests.pals_core.vllm import servers
from tests.pals_core.vllm.control_run import profile_pals, run_pals_against
from tests.pals_core.vllm.load import RunningWatcher
from tests.pals_core.vllm.scenario import run_limit_scenario

pytestmark = pytest.mark.slow
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


# Timing on a CPU vLLM under a busy 2-core machine: a missed observation of the rise is
# retried; an observation over the limit fails at once and is never retried away.
@pytest.mark.flaky(reruns=2, rerun_except="running under a limit of")
def test_pals_proxy_enforces_its_limit(vllm_server: servers.Server, proxy: servers.Server) -> None:
    engine = VLLMEngine(proxy.base_url)  # the proxy speaks the batch-limit protocol
    assert engine.batch_limit_unavailable_reason() is None
    # The tiny model on CPU generates a stream faster than this loaded machine relays it, so a
    # request can be done in vLLM while the proxy still relays it and holds its slot: the raise
    # shows first in what the proxy admits (vLLM's own count is still checked against the caps).
    admitted = RunningWatcher(proxy.base_url + "/pals/batch_limit", "json:active")
    result = run_limit_scenario(
        proxy.base_url, vllm_server.base_url + "/metrics", engine.set_batch_limit, admitted
    )
    result.check()
    metrics = httpx.get(proxy.base_url + "/metrics").text  # vLLM's, passed through
    assert "\nvllm:num_requests_running{" in metrics and "\npals:batch_limit 16" in metrics
    assert engine.metrics().request_success_total >= 32
    engine.close()
