"""Fleet specs, and the nodes built from them: names, GPU counts, and curves the gateway takes."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from pals_core.agent.fleet import FleetOptions, NodeType, build_fleet, parse_spec
from pals_core.errors import ConfigurationError


def test_specs() -> None:
    assert parse_spec("3") == [
        NodeType("llama-3.1-8b", 1),
        NodeType("qwen3-30b-a3b", 2),
        NodeType("llama-3.1-70b", 4),
    ]
    assert parse_spec("2xllama-3.1-8b@1, qwen3-30b-a3b@2") == [
        NodeType("llama-3.1-8b", 1),
        NodeType("llama-3.1-8b", 1),
        NodeType("qwen3-30b-a3b", 2),
    ]
    for bad in ("0", "llama-3.1-8b", "qwen3-30b-a3b@3", "2xnope@1", "5000"):
        with pytest.raises(ConfigurationError, match="--nodes"):
            parse_spec(bad)


def test_built_nodes_register_a_profiled_curve(tmp_path: Path) -> None:
    nodes, now_s = build_fleet(parse_spec("2"), FleetOptions(profile_dir=tmp_path))
    assert [n.spec.name for n in nodes] == ["sim-001", "sim-002"]
    assert [n.spec.gpu_count for n in nodes] == [1, 2]
    for node in nodes:
        curve = node.spec.curve
        assert len(curve) >= 6
        assert all(b[0] > a[0] and b[1] >= a[1] for a, b in itertools.pairwise(curve))
        assert curve[0][0] >= 0.5 * node.spec.min_power_w
        assert curve[-1][0] <= 1.05 * node.spec.max_power_w
        body = node.spec.registration()
        assert body["curve"] == [list(p) for p in curve]
        stock = node.spec.stock_curve  # (tok/s, W) at 700 W caps and batch 256, by load
        assert len(stock) >= 6
        assert all(b[0] > a[0] and b[1] >= a[1] for a, b in itertools.pairwise(stock))
        assert stock[-1][1] <= 1.05 * node.spec.max_power_w
        assert stock[-1][0] >= 0.9 * curve[-1][1]  # stock serves about the most the node can
        assert body["stock_curve"] == [list(p) for p in stock]
        assert body["gpu_min_cap_w"] < body["gpu_max_cap_w"]
    first = now_s()
    assert now_s() >= first  # the shared simulation follows wall time
