from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import pytest

from pals_core.experiments import oracle, runner
from pals_core.experiments.oracle import OracleCandidate, choose, search_horizon
from pals_core.experiments.scenarios import NodeConfig, Scenario, quick_matrix
from tests.pals_core.experiments.fakes import build_fake_node


def c(cap: float, batch: int, tokj: float, peak: float, violated: int = 0) -> OracleCandidate:
    return OracleCandidate(cap, batch, tokj, peak, violated, qos_windows=20)


CANDIDATES = [
    c(700, 256, 5.0, 690),
    c(500, 256, 7.0, 495),
    c(400, 128, 9.0, 398, violated=2),  # most efficient but misses QoS (10 % > 1 %)
    c(300, 64, 6.0, 300),
]


def test_unconstrained_pick_is_the_most_efficient_that_meets_qos() -> None:
    assert choose(CANDIDATES, None) == CANDIDATES[1]


def test_budget_excludes_configurations_whose_peak_exceeds_it() -> None:
    assert choose(CANDIDATES, 450.0) == CANDIDATES[3]
    # Nothing within budget meets QoS: fewest violations first, then tok/J.
    tight = [c(400, 128, 9.0, 398, violated=2), c(350, 64, 8.0, 349, violated=1)]
    assert choose(tight, 420.0) == tight[1]
    # Nothing fits the budget at all: the lowest peak.
    assert choose(CANDIDATES, 100.0) == CANDIDATES[3]
    with pytest.raises(ValueError):
        choose([], None)


def test_search_runs_the_whole_grid_on_a_shortened_unconstrained_horizon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "build_node", build_fake_node)
    monkeypatch.setattr(oracle, "SEARCH_STOP_FRAC", math.inf)  # the whole grid
    matrix = replace(
        quick_matrix(), oracle_search_s=12.0, oracle_cap_step_w=250.0, profile_batches=(8, 256)
    )
    scenario = Scenario(NodeConfig("fake", "H100-SXM", 1), 0.5, "static", 0.6, 1, 60.0, 15.0)
    horizon = search_horizon(scenario, matrix)
    assert (horizon.duration_s, horizon.warmup_s, horizon.budget_kind) == (12.0, 4.0, "none")
    found = oracle.oracle_search(scenario, matrix, max_cap_w=700.0, min_cap_w=200.0, stock_batch=64)
    assert {(x.cap_w, x.batch_limit) for x in found} == {
        (cap, batch) for cap in (200.0, 450.0, 700.0) for batch in (8, 64, 256)
    }  # the grid from the minimum cap, every PALS batch level and stock's
    assert all(x.peak_power_w <= x.cap_w + 1e-6 for x in found)


def test_picks_are_verified_on_the_full_scenario_and_respect_each_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[float] = []
    real_run = runner.run_scenario

    def counting_run(scenario: Scenario, *args: object, **kwargs: object) -> runner.RunResult:
        runs.append(scenario.duration_s)
        return real_run(scenario, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "build_node", build_fake_node)
    monkeypatch.setattr(oracle, "run_scenario", counting_run)
    monkeypatch.setattr(oracle, "SEARCH_STOP_FRAC", math.inf)
    matrix = replace(
        quick_matrix(),
        oracle_search_s=12.0,
        oracle_cap_step_w=250.0,
        profile_batches=(8, 256),
        oracle_finalists=1,
    )
    seeds = [
        Scenario(NodeConfig("fake", "H100-SXM", 1), 0.5, "none", None, seed, 30.0, 10.0)
        for seed in (1, 2)
    ]
    picks = oracle.oracle_picks(seeds, matrix, [None, 300.0], 700.0, 200.0, stock_batch=256)
    assert set(picks) == {"oracle-static", "static-cap"}
    assert all(len(p) == 2 and p[1].peak_power_w <= 300.0 for p in picks.values())
    assert all(p.batch_limit == 256 for p in picks["static-cap"])  # the cap alone
    # The grid (3 caps x 2 batches) on the first seed's short horizon, then each finalist on
    # the full scenario of both seeds.
    assert runs.count(12.0) == 6 and runs.count(30.0) % 2 == 0 and runs.count(30.0) >= 2


def test_verification_walks_down_the_ranking_until_a_configuration_is_clean_on_the_full_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The short search ranks A first; on the full scenario A and B miss QoS, C and D meet it.
    short = [
        c(300, 256, 9.0, 300),
        c(350, 256, 8.5, 350),
        c(400, 256, 8.0, 400),
        c(700, 256, 5.0, 690),
    ]
    full = {300: (8.8, 300, 4), 350: (8.4, 350, 1), 400: (7.9, 400, 0), 700: (5.0, 690, 0)}
    # Verification windows: 20 per run; one violated window is 5 %, over the 1 % budget.
    verified: list[float] = []

    class Result:
        def __init__(self, cap_w: float) -> None:
            self.tokens_per_j, self.peak_power_w, self.qos_violated = full[int(cap_w)]
            self.qos_windows = 20

    def fake_run(scenario: Scenario, controller: str, *, fixed: runner.FixedConfig) -> Result:
        assert scenario.budget_kind == "none" and scenario.duration_s == 180.0
        verified.append(fixed.cap_w)
        return Result(fixed.cap_w)

    monkeypatch.setattr(oracle, "oracle_search", lambda *args: short)
    monkeypatch.setattr(oracle, "run_scenario", fake_run)
    scenario = Scenario(NodeConfig("fake", "H100-SXM", 1), 0.8, "none", None, 1, 180.0, 30.0)
    matrix = replace(quick_matrix(), oracle_finalists=1, oracle_max_verified=10)
    (pick,) = oracle.oracle_picks([scenario], matrix, [None], 700.0, 200.0, 256)["oracle-static"]
    assert (pick.cap_w, pick.qos_violated, pick.tokens_per_j) == (400, 0, 7.9)
    assert verified == [300, 350, 400]  # stops at the first clean one

    # With too few verifications allowed to reach a clean one, the pick's batch is climbed to
    # the lowest cap that is clean on the full run: the top of the grid first, then bisection.
    full.update({cap: (8.3 - cap / 1000, cap, int(cap < 400)) for cap in range(375, 700, 25)})
    verified.clear()
    matrix = replace(matrix, oracle_max_verified=2, oracle_cap_step_w=25.0)
    picks = oracle.oracle_picks([scenario], matrix, [None], 700.0, 200.0, 256)
    for (pick,) in picks.values():
        assert (pick.cap_w, pick.qos_violated) == (400, 0)
    assert verified[:3] == [300, 350, 700] and len(verified) <= 2 + 1 + 5  # log2(14) bisections


def climb_verify(
    violated_below_w: float, calls: list[float]
) -> Callable[[OracleCandidate], OracleCandidate]:
    def verify(candidate: OracleCandidate) -> OracleCandidate:
        calls.append(candidate.cap_w)
        bad = 1 if candidate.cap_w < violated_below_w else 0
        return c(
            candidate.cap_w, candidate.batch_limit, 10 - candidate.cap_w / 100, candidate.cap_w, bad
        )

    return verify


def test_climb_to_qos_finds_the_lowest_clean_cap_by_bisection() -> None:
    caps = oracle.cap_grid_w(200.0, 700.0, 25.0)
    base = c(300, 64, 9.0, 300, violated=3)
    calls: list[float] = []
    found = oracle.climb_to_qos(climb_verify(460.0, calls), base, caps, 1, None)
    assert found is not None and (found.cap_w, found.batch_limit, found.qos_violated) == (
        475,
        64,
        0,
    )
    assert calls[0] == 700.0 and len(calls) <= 1 + 5  # 16 caps above 300 W: 4-5 bisections
    # A budget keeps the climb to caps whose sum stays within it (2 GPUs, 1,000 W: <= 500 W).
    calls.clear()
    found = oracle.climb_to_qos(climb_verify(460.0, calls), base, caps, 2, 1000.0)
    assert found is not None and found.cap_w == 475 and max(calls) == 500.0
    # Where even the highest cap the budget allows misses QoS: nothing, after one run.
    calls.clear()
    assert oracle.climb_to_qos(climb_verify(600.0, calls), base, caps, 2, 1000.0) is None
    assert calls == [500.0]


def test_search_stops_a_batch_past_its_efficiency_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    tokj = {200.0: 5.0, 300.0: 9.0, 400.0: 8.0, 500.0: 6.0, 600.0: 5.0, 700.0: 4.0}
    ran: list[float] = []

    class Result:
        def __init__(self, cap_w: float) -> None:
            self.tokens_per_j, self.peak_power_w = tokj[cap_w], cap_w
            self.qos_violated = 1 if cap_w == 200.0 else 0  # the lowest cap misses QoS
            self.qos_windows = 4

    def fake_run(scenario: Scenario, controller: str, *, fixed: runner.FixedConfig) -> Result:
        ran.append(fixed.cap_w)
        return Result(fixed.cap_w)

    monkeypatch.setattr(oracle, "run_scenario", fake_run)
    matrix = replace(quick_matrix(), oracle_cap_step_w=100.0, profile_batches=(64,))
    scenario = Scenario(NodeConfig("fake", "H100-SXM", 1), 0.5, "none", None, 1, 60.0, 15.0)
    found = oracle.oracle_search(scenario, matrix, max_cap_w=700.0, min_cap_w=200.0)
    # 9.0 at 300 W is the peak; 8.0 at 400 W is 11 % below it, so the batch ends there.
    assert ran == [200.0, 300.0, 400.0] and len(found) == 3


def test_the_static_front_runs_the_grid_around_the_picks_on_every_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "build_node", build_fake_node)
    matrix = replace(quick_matrix(), oracle_cap_step_w=50.0, static_front_span_w=100.0)
    seeds = [
        Scenario(NodeConfig("fake", "H100-SXM", 1), 0.5, "none", None, seed, 20.0, 5.0)
        for seed in (1, 2)
    ]
    front = oracle.static_front(seeds, matrix, [300.0, 400.0], 200.0, 700.0, stock_batch=64)
    assert [p.cap_w for p in front] == [200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0]
    assert all(p.seeds == (1, 2) and len(p.tokens_per_j) == 2 for p in front)
    # Each point is the full scenario (three 5-s windows after the 5-s warm-up), not the
    # search's shortened horizon.
    assert all(p.qos_windows == (3, 3) for p in front)
    assert (
        oracle.static_front(
            seeds, replace(matrix, static_front_span_w=0.0), [300.0], 200.0, 700.0, 64
        )
        == []
    )
    assert oracle.static_front(seeds, matrix, [], 200.0, 700.0, 64) == []
