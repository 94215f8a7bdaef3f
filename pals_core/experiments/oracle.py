"""``oracle-static`` and ``static-cap``: the best fixed configurations in hindsight, by search.

The search runs every configuration of a grid on the *true* simulator with the scenario's load:
perfect knowledge, no model. The grid is every cap from the GPU's minimum to its maximum in steps
of ``Matrix.oracle_cap_step_w`` (25 W on the full matrix) times every batch level PALS may choose
(``Matrix.oracle_batches``) and stock's batch limit; each batch's caps are run upward from the
minimum and stop past the batch's efficiency peak (``SEARCH_STOP_FRAC``). To stay affordable the
grid runs a shortened, unconstrained horizon (``Matrix.oracle_search_s``) of the scenario's first
seed and records each configuration's tok/J, peak interval power and QoS. Two pickers read it:

- ``oracle-static``: any configuration of the grid;
- ``static-cap``: only stock's batch limit (what ``nvidia-smi -pl`` alone can do: one cap).

Per budget, each ranks the configurations (:func:`rank`): those whose peak power stays within
the budget (all, when unconstrained); among them those that meet the QoS budget, by tok/J, then
the others by fewest violated windows.
A short horizon can miss a queue that builds up slowly, or a latency excursion that a longer
run meets, so the best of the ranking are then run on the full scenario of *every* seed, in
order, until one meets the QoS budget there (violated windows over all seeds at most
``qos_violation_budget`` of the windows; at least ``Matrix.oracle_finalists``, at most
``Matrix.oracle_max_verified`` verified), and ranked again on those figures. If none of them meets
the QoS budget within the budget, the pick's batch is climbed to the lowest cap that does
(:func:`climb_to_qos`): the short horizon ranks the efficient caps first, and where all of those
break the SLO on the full runs the reference would otherwise be a configuration that an operator
would not fix (the 70B at 70 % load: 325 W, 25 of 100 windows violated, where stock at 700 W
violates 1), and the scenario would drop out of every matched-QoS comparison. One configuration
per scenario and budget, chosen on all its seeds: the reference an operator could have fixed in
hindsight, not a per-seed lottery. Each seed's run of it is measured like every other controller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pals_core.control.qos import QOS_VIOLATION_BUDGET
from pals_core.experiments.runner import FixedConfig, run_scenario
from pals_core.experiments.scenarios import Matrix, Scenario

SEARCH_STOP_FRAC = 0.05
"""A batch's caps are searched upward until a configuration meeting QoS falls this far below the
best tok/J met at that batch: beyond the efficiency peak higher caps only draw more power (and
a higher peak, which no budget prefers), so they cannot be picked."""


@dataclass(frozen=True, slots=True)
class OracleCandidate:
    cap_w: float
    batch_limit: int
    tokens_per_j: float
    peak_power_w: float
    qos_violated: int
    qos_windows: int = 0

    @property
    def violated_frac(self) -> float:
        if not self.qos_windows:
            return math.inf if self.qos_violated else 0.0
        return self.qos_violated / self.qos_windows


def search_horizon(scenario: Scenario, matrix: Matrix) -> Scenario:
    """The shortened, unconstrained copy of ``scenario`` the search runs on."""
    horizon_s = min(matrix.oracle_search_s, scenario.duration_s)
    return replace(
        scenario.unconstrained(),
        duration_s=horizon_s,
        warmup_s=min(scenario.warmup_s, horizon_s / 3),
    )


def cap_grid_w(min_cap_w: float, max_cap_w: float, step_w: float) -> list[float]:
    """Every cap from the minimum up in ``step_w``, and the maximum."""
    caps, cap = [], min_cap_w
    while cap < max_cap_w - 1e-6:
        caps.append(cap)
        cap += step_w
    return [*caps, max_cap_w]


def oracle_search(
    scenario: Scenario,
    matrix: Matrix,
    max_cap_w: float,
    min_cap_w: float,
    stock_batch: int | None = None,
) -> list[OracleCandidate]:
    """Run the whole grid on the scenario's shortened horizon."""
    horizon = search_horizon(scenario, matrix)
    batches = sorted({*matrix.oracle_batches, *([stock_batch] if stock_batch else [])})
    candidates = []
    for batch in batches:
        best_clean = 0.0
        for cap_w in cap_grid_w(min_cap_w, max_cap_w, matrix.oracle_cap_step_w):
            result = run_scenario(horizon, "oracle-static", fixed=FixedConfig(cap_w, batch))
            found = OracleCandidate(
                cap_w,
                batch,
                result.tokens_per_j,
                result.peak_power_w,
                result.qos_violated,
                result.qos_windows,
            )
            candidates.append(found)
            if _meets_qos(found):
                if found.tokens_per_j < best_clean * (1.0 - SEARCH_STOP_FRAC):
                    break  # past the efficiency peak of a clean batch: higher caps only lose
                best_clean = max(best_clean, found.tokens_per_j)
    return candidates


def _fits(candidate: OracleCandidate, budget_w: float | None) -> bool:
    return budget_w is None or candidate.peak_power_w <= budget_w


def _meets_qos(candidate: OracleCandidate) -> bool:
    return candidate.violated_frac <= QOS_VIOLATION_BUDGET + 1e-12


def rank(candidates: Sequence[OracleCandidate], budget_w: float | None) -> list[OracleCandidate]:
    """Candidates in the oracle's order of preference for a budget (see the module doc)."""
    if not candidates:
        raise ValueError("no oracle candidates")
    feasible = [c for c in candidates if _fits(c, budget_w)]
    if not feasible:
        return sorted(candidates, key=lambda c: c.peak_power_w)
    return sorted(feasible, key=_preference)


def _preference(c: OracleCandidate) -> tuple[bool, float, int, float]:
    """Meeting the QoS budget first; among those, tok/J; among the rest, the fewest violations."""
    if _meets_qos(c):
        return (False, 0.0, 0, -c.tokens_per_j)
    return (True, c.violated_frac, c.qos_violated, -c.tokens_per_j)


def choose(candidates: Sequence[OracleCandidate], budget_w: float | None) -> OracleCandidate:
    """The oracle's pick for a budget (see the module doc)."""
    return rank(candidates, budget_w)[0]


def climb_to_qos(
    verify: Callable[[OracleCandidate], OracleCandidate],
    base: OracleCandidate,
    caps_w: Sequence[float],
    num_gpus: int,
    budget_w: float | None,
) -> OracleCandidate | None:
    """The lowest cap of ``caps_w`` above ``base``'s, at its batch, whose full runs meet the QoS
    budget within the budget, by bisection (the violated windows fall as the cap rises), among
    the caps whose sum cannot exceed the budget (``nvidia-smi -pl`` alone keeps it); None when
    even the highest of them misses QoS (where the budget binds below the power the SLO needs)."""

    def clean(cap_w: float) -> OracleCandidate | None:
        found = verify(OracleCandidate(cap_w, base.batch_limit, math.nan, math.nan, 0))
        return found if _meets_qos(found) and _fits(found, budget_w) else None

    above = [
        c
        for c in caps_w
        if c > base.cap_w + 1e-6 and (budget_w is None or c * num_gpus <= budget_w + 1e-6)
    ]
    if not above or (best := clean(above[-1])) is None:
        return None
    lo, hi = 0, len(above) - 1  # above[hi] is clean
    while lo < hi:
        mid = (lo + hi) // 2
        found = clean(above[mid])
        if found is not None:
            hi, best = mid, found
        else:
            lo = mid + 1
    return best


def oracle_picks(
    scenarios: Sequence[Scenario],
    matrix: Matrix,
    budgets_w: Sequence[float | None],
    max_cap_w: float,
    min_cap_w: float,
    stock_batch: int,
) -> dict[str, list[OracleCandidate]]:
    """Per picker (``oracle-static``, ``static-cap``), the pick for each budget, for the
    unconstrained ``scenarios`` of one (node, load) over its seeds (see the module doc)."""
    short = oracle_search(scenarios[0], matrix, max_cap_w, min_cap_w, stock_batch)
    caps_w = cap_grid_w(min_cap_w, max_cap_w, matrix.oracle_cap_step_w)
    num_gpus = scenarios[0].node.num_gpus
    verified: dict[tuple[float, int], OracleCandidate] = {}

    def verify(candidate: OracleCandidate) -> OracleCandidate:
        key = (candidate.cap_w, candidate.batch_limit)
        if key not in verified:
            fixed = FixedConfig(candidate.cap_w, candidate.batch_limit)
            results = [run_scenario(s, "oracle-static", fixed=fixed) for s in scenarios]
            verified[key] = OracleCandidate(
                *key,
                tokens_per_j=sum(r.tokens_per_j for r in results) / len(results),
                peak_power_w=max(r.peak_power_w for r in results),
                qos_violated=sum(r.qos_violated for r in results),
                qos_windows=sum(r.qos_windows for r in results),
            )
        return verified[key]

    # The static cap first: its pick is one of the oracle's configurations (stock's batch is in
    # the oracle's grid), so the oracle's pick is never worse than it.
    pools = {
        "static-cap": [c for c in short if c.batch_limit == stock_batch],
        "oracle-static": short,
    }
    picks: dict[str, list[OracleCandidate]] = {}
    for name, pool in pools.items():
        picks[name] = []
        for i, budget_w in enumerate(budgets_w):
            checked: list[OracleCandidate] = []
            for k, candidate in enumerate(rank(pool, budget_w)[: matrix.oracle_max_verified]):
                checked.append(verify(candidate))
                clean = any(_meets_qos(v) and _fits(v, budget_w) for v in checked)
                if clean and k + 1 >= matrix.oracle_finalists:
                    break
            if name == "oracle-static":
                static = verified.get((picks["static-cap"][i].cap_w, stock_batch))
                checked += [static] if static is not None else []
            fitting = [v for v in checked if _fits(v, budget_w)]
            if fitting and not any(_meets_qos(v) for v in fitting):
                climbed = climb_to_qos(
                    verify, choose(fitting, budget_w), caps_w, num_gpus, budget_w
                )
                if climbed is not None:
                    fitting.append(climbed)
            picks[name].append(choose(fitting, budget_w) if fitting else choose(pool, budget_w))
    return picks


@dataclass(frozen=True, slots=True)
class FrontPoint:
    """One fixed cap at stock's batch over a search's seeds: what each seed's run measured."""

    cap_w: float
    seeds: tuple[int, ...]
    qos_violated: tuple[int, ...]
    qos_windows: tuple[int, ...]
    tokens_per_j: tuple[float, ...]
    peak_power_w: tuple[float, ...]
    """Node power's highest interval value per seed: a point fits a budget as a pick does
    (peak within it), whatever its cap."""


def static_front(
    scenarios: Sequence[Scenario],
    matrix: Matrix,
    picks_w: Sequence[float],
    min_cap_w: float,
    max_cap_w: float,
    stock_batch: int,
) -> list[FrontPoint]:
    """The static cap's front around its picks: every cap of the search grid within
    ``Matrix.static_front_span_w`` of the lowest and the highest pick, run at stock's batch on
    each of ``scenarios`` (the seeds' unconstrained scenarios: a fixed cap runs the same under
    any budget it fits). PALS is then compared with the best of these that violates no more
    windows than it does (:func:`pals_core.experiments.summary.static_front_efficiency`)."""
    if not picks_w or matrix.static_front_span_w <= 0:
        return []
    low, high = min(picks_w) - matrix.static_front_span_w, max(picks_w) + matrix.static_front_span_w
    grid = cap_grid_w(min_cap_w, max_cap_w, matrix.oracle_cap_step_w)
    caps = [c for c in grid if low - 1e-6 <= c <= high + 1e-6]
    points = []
    for cap_w in caps:
        results = [
            run_scenario(s, "static-cap", fixed=FixedConfig(cap_w, stock_batch)) for s in scenarios
        ]
        points.append(
            FrontPoint(
                cap_w,
                tuple(s.seed for s in scenarios),
                tuple(r.qos_violated for r in results),
                tuple(r.qos_windows for r in results),
                tuple(r.tokens_per_j for r in results),
                tuple(r.peak_power_w for r in results),
            )
        )
    return points
