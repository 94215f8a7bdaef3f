"""Arrival processes and lengths: rates, bursts, cycles, traces (and their error messages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pals_core.errors import ConfigurationError, TraceFormatError
from pals_core.sim import (
    BurstyWorkload,
    DiurnalWorkload,
    PoissonWorkload,
    SimClock,
    TraceWorkload,
    build_sim_node,
    chat_lengths,
)
from pals_core.sim.workload import Workload


def _bind(w: Workload, seed: int = 0) -> SimClock:
    clock = SimClock()
    w.bind(np.random.default_rng(seed), clock, chat_lengths(400.0, 300.0))
    return clock


def _times_until(w: Workload, end_s: float) -> list[float]:
    out = []
    while w.peek_next_s() < end_s:
        out.append(w.pop().arrival_s)
    return out


def test_poisson_rate_and_lengths() -> None:
    w = PoissonWorkload(rate_req_s=10.0)
    _bind(w)
    arrivals = []
    while w.peek_next_s() < 1000.0:
        arrivals.append(w.pop())
    assert 9500 < len(arrivals) < 10500
    outputs = np.array([a.output_tokens for a in arrivals])
    prompts = np.array([a.prompt_tokens for a in arrivals])
    assert 370 < outputs.mean() < 430 and np.median(outputs) < outputs.mean()
    assert 270 < prompts.mean() < 330 and prompts.min() >= 1


def test_negative_or_infinite_rate_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="rate_req_s"):
        PoissonWorkload(rate_req_s=-1.0)
    with pytest.raises(ConfigurationError, match="rate_req_s"):
        PoissonWorkload(rate_req_s=10.0).set_rate(float("inf"))


def test_set_rate_changes_offered_load_on_a_node() -> None:
    node = build_sim_node(workload=PoissonWorkload(1.0), seed=3)
    node.clock.sleep(100.0)
    low = node.engine.metrics().requests_arrived_total
    node.workload.set_rate(5.0)
    node.clock.sleep(100.0)
    high = node.engine.metrics().requests_arrived_total - low
    assert 60 < low < 140 and 400 < high < 600


def test_bursty_has_bursts_at_the_multiplied_rate() -> None:
    w = BurstyWorkload(rate_req_s=5.0, burst_multiplier=4.0, burst_s=20.0, period_s=100.0)
    _bind(w)
    times = np.array(_times_until(w, 1000.0))
    phase = times % 100.0
    in_burst = (phase >= 80.0).sum() / 200.0
    calm = (phase < 80.0).sum() / 800.0
    assert in_burst / calm == pytest.approx(4.0, rel=0.15)


def test_diurnal_peaks_where_asked() -> None:
    w = DiurnalWorkload(rate_req_s=2.0, amplitude=0.8, period_s=1000.0, peak_s=250.0)
    _bind(w)
    times = np.array(_times_until(w, 10_000.0)) % 1000.0
    near_peak = ((times > 150) & (times < 350)).sum()
    near_trough = ((times > 650) & (times < 850)).sum()
    assert near_peak > 3 * near_trough


def test_trace_replays_relative_to_start(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,prompt_tokens,output_tokens\n0.5,100,20\n1.0,50,10\n")
    node = build_sim_node(workload=TraceWorkload(path), seed=1)
    node.clock.sleep(10.0)
    m = node.engine.metrics()
    assert m.requests_arrived_total == 2 and m.request_success_total == 2
    assert m.generation_tokens_total == 30 and m.prompt_tokens_arrived_total == 150


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("0.5,100,20\n1.0,abc,10\n", "line 2, column 2 (prompt_tokens)"),
        ("0.5,100,20\n0.4,10,10\n", "line 2, column 1 (arrival_s)"),
        ("0.5,100\n", "line 1: expected 3 columns"),
        ("0.5,100,0\n", "line 1, column 3 (output_tokens)"),
        ("-1,100,5\n", "line 1, column 1 (arrival_s)"),
        ("", "no requests"),
    ],
)
def test_malformed_trace_is_refused_naming_line_and_column(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(
        TraceFormatError, match=r".*" + where.replace("(", r"\(").replace(")", r"\)")
    ):
        TraceWorkload(path)
