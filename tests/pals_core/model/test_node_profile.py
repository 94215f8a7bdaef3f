"""Profiling a real node refuses what cannot be profiled, before touching the GPUs."""

from __future__ import annotations

import httpx
import pytest

from pals_core.engine.vllm import VLLMEngine
from pals_core.errors import ConfigurationError
from pals_core.model.node_profile import SaturatingClient, check_batch_knob


def _engine(handler: httpx.MockTransport) -> VLLMEngine:
    return VLLMEngine("http://vllm.test", client=httpx.Client(transport=handler))


def test_an_engine_without_a_batch_knob_is_refused() -> None:
    engine = _engine(httpx.MockTransport(lambda r: httpx.Response(404, text="not found")))
    with pytest.raises(ConfigurationError, match=r"cannot profile this node.*--scheduler-cls"):
        check_batch_knob(engine, [8, 16])


def test_batches_past_vllms_max_num_seqs_are_refused() -> None:
    state = {"max_num_seqs": 32, "max_num_seqs_max": 32}
    engine = _engine(httpx.MockTransport(lambda r: httpx.Response(200, json=state)))
    check_batch_knob(engine, [8, 32])
    with pytest.raises(ConfigurationError, match="--max-num-seqs 32"):
        check_batch_knob(engine, [8, 64])


def test_the_load_needs_a_positive_size() -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        SaturatingClient("http://vllm.test", "m", concurrency=0)
