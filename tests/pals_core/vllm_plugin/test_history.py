"""The admission history both knobs keep: entries on change only, bounded, served as JSON."""

from __future__ import annotations

import itertools
import socket

import httpx
import pytest

from pals_core.engine.vllm import VLLMEngine
from pals_core.vllm_plugin import ControlAddress
from pals_core.vllm_plugin.control import ControlServer
from pals_core.vllm_plugin.history import AdmissionHistory


def test_records_changes_only_and_keeps_the_newest() -> None:
    ticks = itertools.count(100)
    history = AdmissionHistory(size=3, clock=lambda: float(next(ticks)))
    history.record(0, 0, 4)
    history.record(0, 5, 4)  # only the waiting count moved: not a change
    history.record(4, 1, 4)
    history.record(4, 1, 16)  # the limit moved
    history.record(9, 0, 16)
    assert history.entries() == [(101.0, 4, 1, 4), (102.0, 4, 1, 16), (103.0, 9, 0, 16)]
    assert history.as_json() == {
        "clock": "monotonic",
        "entries": [[101.0, 4, 1, 4], [102.0, 4, 1, 16], [103.0, 9, 0, 16]],
    }
    with pytest.raises(ValueError, match="size"):
        AdmissionHistory(size=0)


def test_the_channel_serves_it_and_the_engine_reads_it() -> None:
    history = AdmissionHistory()
    history.record(2, 0, 8)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ControlServer(
        ControlAddress(host="127.0.0.1", port=port),
        lambda: {"max_num_seqs": 8},
        lambda n: {"max_num_seqs": n},
        history.as_json,
    )
    server.start()
    try:
        engine = VLLMEngine("http://vllm.test", control=f"127.0.0.1:{port}")
        [(t_s, running, waiting, limit)] = engine.admission_history()
        assert (running, waiting, limit) == (2, 0, 8) and t_s > 0
        engine.close()
    finally:
        server.close()


def test_the_engine_refuses_a_malformed_history() -> None:
    api = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"entries": [[1, 2]]}))
    )
    engine = VLLMEngine("http://vllm.test", client=api)
    with pytest.raises(Exception, match="did not answer an admission history"):
        engine.admission_history()
