"""The plugin's control channel (no vLLM needed): addresses, the listener, VLLMEngine over it."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pals_core.engine.vllm import VLLMEngine
from pals_core.errors import ConfigurationError, EngineError
from pals_core.vllm_plugin import ControlAddress, check_vllm_version, parse_control_address
from pals_core.vllm_plugin.control import BatchLimitRefused, ControlServer
from pals_core.vllm_plugin.versions import UnsupportedVLLMVersionError


class FakeScheduler:
    def __init__(self) -> None:
        self.limit, self.capacity = 8, 32

    def state(self) -> dict[str, Any]:
        return {"max_num_seqs": self.limit, "max_num_seqs_max": self.capacity}

    def set_limit(self, n: int) -> dict[str, Any]:
        if not 1 <= n <= self.capacity:
            raise BatchLimitRefused(f"max_num_seqs must be within [1, {self.capacity}], got {n}")
        self.limit = n
        return self.state()


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="palsctl-") as folder:  # short: sun_path limit
        yield Path(folder) / "ctl.sock"


def test_addresses() -> None:
    assert parse_control_address("unix:/run/pals/vllm.sock") == ControlAddress(
        "/run/pals/vllm.sock"
    )
    assert parse_control_address("unix:///run/x.sock") == ControlAddress("/run/x.sock")
    assert parse_control_address("/tmp/a.sock").unix_path == "/tmp/a.sock"
    assert parse_control_address("127.0.0.1:8101") == ControlAddress(None, "127.0.0.1", 8101)
    assert parse_control_address("http://[::1]:81/") == ControlAddress(None, "::1", 81)
    for bad in ("", "relative.sock", "host", "host:0", "host:99999", "unix:relative"):
        with pytest.raises(ConfigurationError, match="PALS_VLLM_CONTROL"):
            parse_control_address(bad)


def test_versions() -> None:
    assert check_vllm_version("0.32.0").admission_attribute == "max_num_active_reqs"
    assert check_vllm_version("0.32.3+cpu").capacity_attribute == "max_num_running_reqs"
    with pytest.raises(UnsupportedVLLMVersionError, match=r"vLLM 0\.11\.0; supported: 0\.32\.x"):
        check_vllm_version("0.11.0")


def test_engine_over_the_unix_socket(socket_path: Path) -> None:
    scheduler = FakeScheduler()
    server = ControlServer(ControlAddress(str(socket_path)), scheduler.state, scheduler.set_limit)
    server.start()
    try:
        assert socket_path.stat().st_mode & 0o777 == 0o660
        api = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
        engine = VLLMEngine("http://vllm.test", control=f"unix:{socket_path}", client=api)
        assert engine.batch_limit_unavailable_reason() is None
        assert engine.get_batch_limit() == 8 and engine.max_batch_limit == 32
        engine.set_batch_limit(20)
        assert scheduler.limit == 20
        engine.set_batch_limit(500)  # clamped to the capacity
        assert scheduler.limit == 32
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path))) as raw:
            refused = raw.post("http://x/pals/batch_limit", json={"max_num_seqs": 40})
            assert refused.status_code == 400 and "within [1, 32]" in refused.json()["detail"]
            assert raw.post("http://x/pals/batch_limit", content=b"{").status_code == 400
            wrong = raw.post("http://x/pals/batch_limit", json={"max_num_seqs": 2.5})
            assert wrong.status_code == 400 and "integer" in wrong.text
            assert raw.get("http://x/other").status_code == 404
        engine.close()
    finally:
        server.close()
    assert not socket_path.exists()
    engine = VLLMEngine("http://vllm.test", control=f"unix:{socket_path}", reprobe_s=60)
    reason = engine.batch_limit_unavailable_reason()
    assert reason is not None and "--scheduler-cls" in reason
    with pytest.raises(EngineError, match="cannot be changed"):
        engine.set_batch_limit(4)
    engine.close()


def test_tcp_listener() -> None:
    scheduler = FakeScheduler()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ControlServer(
        ControlAddress(host="127.0.0.1", port=port), scheduler.state, scheduler.set_limit
    )
    server.start()
    try:
        engine = VLLMEngine("http://vllm.test", control=f"127.0.0.1:{port}")
        engine.set_batch_limit(3)
        assert scheduler.limit == 3 == engine.get_batch_limit()
        engine.close()
    finally:
        server.close()


def test_stale_and_live_sockets(socket_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(socket_path))
    stale.close()  # the file stays, nobody listens: a crashed vLLM's leftover
    scheduler = FakeScheduler()
    first = ControlServer(ControlAddress(str(socket_path)), scheduler.state, scheduler.set_limit)
    first.start()
    try:
        with pytest.raises(ConfigurationError, match="another process is listening"):
            ControlServer(ControlAddress(str(socket_path)), scheduler.state, scheduler.set_limit)
    finally:
        first.close()
    socket_path.write_text("not a socket")
    with pytest.raises(ConfigurationError, match="not a socket"):
        ControlServer(ControlAddress(str(socket_path)), scheduler.state, scheduler.set_limit)
