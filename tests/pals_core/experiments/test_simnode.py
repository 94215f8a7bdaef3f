"""The experiments' simulated nodes: stock's batch limit, the SLO, a device unlike the catalog's."""

from __future__ import annotations

import pytest

from pals_core.control.baselines import vllm_default_max_num_seqs
from pals_core.errors import ConfigurationError
from pals_core.experiments.scenarios import DENSE_SMALL
from pals_core.experiments.simnode import build_node
from pals_core.experiments.slos import latency_slo


def test_vllm_default_batch_limit_depends_on_the_gpu() -> None:
    assert vllm_default_max_num_seqs("NVIDIA H100 80GB HBM3", 80) == 1024
    assert vllm_default_max_num_seqs("NVIDIA A100-SXM4-80GB", 80) == 256
    assert vllm_default_max_num_seqs("NVIDIA L4", 24) == 256


def test_slos_come_from_mlperf_and_unknown_ones_are_refused() -> None:
    assert latency_slo("llama-3.1-8b", "relaxed").tpot_p99_s == 0.1
    assert latency_slo("llama-3.1-70b", "tight").ttft_p99_s == 0.45
    with pytest.raises(ConfigurationError, match="allowed: relaxed, tight"):
        latency_slo("llama-3.1-8b", "loose")
    with pytest.raises(ConfigurationError, match="no MLPerf SLO for model 'x'"):
        latency_slo("x", "relaxed")


def test_a_slower_device_has_less_capacity_and_stock_runs_at_the_vllm_default() -> None:
    nominal = build_node(DENSE_SMALL, load_frac=0.5, seed=1)
    slow = build_node(DENSE_SMALL, load_frac=0.5, seed=1, device_speed=0.8)
    assert nominal.stock_batch == 1024 and nominal.engine.get_batch_limit() == 1024
    assert slow.capacity_tok_s < 0.9 * nominal.capacity_tok_s
    assert nominal.identity.model == "llama-3.1-8b" and nominal.slo.tpot_p99_s == 0.1
