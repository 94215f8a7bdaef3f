"""The sim-node GPU backend against a real sim-node served by uvicorn on a loopback port."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from pals_core.device.simnode import build_sim_node_gpu_group
from pals_core.errors import GPUError, PowerLimitOutOfRangeError
from pals_core.sim.server import SimNodeConfig
from tests.pals_core.sim.live_server import serve_sim_node


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_sim_node(
        SimNodeConfig(model="qwen3-30b-a3b", num_gpus=2, load="poisson", rate_req_s=4.0)
    ) as url:
        yield url


def test_group_reads_writes_and_restores_over_http(base_url: str) -> None:
    with build_sim_node_gpu_group(base_url) as gpus:
        assert len(gpus) == 2
        assert gpus[0].uuid != gpus[1].uuid
        c = gpus[0].power_limit_constraints()
        assert (c.min_w, c.max_w) == (200.0, 700.0)
        original = gpus.get_power_limits_w()
        e0 = gpus.get_energy_j()
        gpus.set_power_limits_w([400.0, 350.0])
        assert gpus.get_power_limits_w() == [400.0, 350.0]
        time.sleep(0.15)
        e1 = gpus.get_energy_j()
        assert all(b > a for a, b in zip(e0, e1, strict=True))  # idle power still draws energy
        assert all(p > 0 for p in gpus.get_power_w())
        assert gpus[1].get_temperature_c() > 0 and gpus[1].get_memory_used_bytes() > 0
        with pytest.raises(PowerLimitOutOfRangeError, match=r"\[200\.0, 700\.0\]"):
            gpus.set_power_limit_w(0, 800.0)
    with httpx.Client() as client:
        assert client.get(base_url + "/pals/power_limit").json()["power_limits_w"] == original


def test_unreachable_node_is_a_gpu_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GPUError, match=f"GET http://127.0.0.1:{port}/pals/gpus failed 3 times"):
        build_sim_node_gpu_group(f"http://127.0.0.1:{port}")


class _StallingTransport(httpx.HTTPTransport):
    """The network, except that the requests numbered in ``stall`` time out (a sim-node stalled
    on a loaded machine) and each request is counted."""

    def __init__(self, stall: set[int]) -> None:
        super().__init__()
        self.stall = stall
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        if len(self.sent) in self.stall:
            raise httpx.ReadTimeout("timed out", request=request)
        return super().handle_request(request)


def test_a_stalled_request_is_sent_again(base_url: str) -> None:
    """Reads and limit sets are idempotent: a request that times out is sent again (the CI run
    where a loaded sim-node stalled past the 2-s timeout failed a whole profile on it)."""
    transport = _StallingTransport(stall={1})
    with httpx.Client(transport=transport, timeout=2.0) as client:
        with build_sim_node_gpu_group(base_url, client=client) as gpus:
            assert transport.sent == ["GET /pals/gpus"] * 2
            low_w = gpus[0].power_limit_constraints().min_w
            sent_before = len(transport.sent)
            transport.stall = {sent_before + 1, sent_before + 2}  # the set's first two sends
            gpus.set_power_limit_w(0, low_w)
            assert gpus.get_power_limits_w()[0] == low_w
        sends = transport.sent[sent_before:]
        assert sends[0] == sends[1] == sends[2], sends  # the same request, three times


def test_an_http_error_status_is_not_sent_again(base_url: str) -> None:
    transport = _StallingTransport(stall=set())
    with (
        httpx.Client(transport=transport, timeout=2.0) as client,
        pytest.raises(GPUError, match="returned HTTP 404"),
    ):
        build_sim_node_gpu_group(base_url + "/nowhere", client=client)
    assert len(transport.sent) == 1
