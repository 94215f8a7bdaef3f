"""The paper experiment: every controller on every scenario, in parallel, then the summary.

Work is a set of independent tasks run by a process pool:

- one PALS profile per node type (cached under ``OUTPUT/profiles``),
- one search per (node, load) (shared by its seeds and budgets; it picks ``oracle-static`` and
  ``static-cap``),
- one run per (scenario, seed, controller); PALS runs wait for their node's profile, searched
  controllers' runs for their search.

Long tasks go first (profiles, the dynamic hours) so the pool's tail stays short.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pals_core.experiments.oracle import FrontPoint, OracleCandidate, oracle_picks, static_front
from pals_core.experiments.pals_adapter import ensure_profile
from pals_core.experiments.runner import FixedConfig, RunResult, _json_safe, run_scenario
from pals_core.experiments.scenarios import CONTROLLERS, SEARCHED, Matrix, NodeConfig, Scenario
from pals_core.experiments.simnode import build_node
from pals_core.experiments.summary import summarize

RESULTS_FILE = "results.json"
SERIES_FILE = "series.json"


@dataclass(frozen=True, slots=True)
class PaperOutput:
    runs: list[RunResult]
    oracle: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    wall_s: float
    results_path: Path


@dataclass(frozen=True, slots=True)
class _SearchResult:
    picks: dict[str, list[OracleCandidate]]
    front: list[FrontPoint]
    """The static cap's front around its picks (:func:`.static_front`)."""
    max_power_w: float


def _oracle_task(
    scenarios: list[Scenario], matrix: Matrix, budget_fracs: list[float | None]
) -> _SearchResult:
    """The searched controllers' picks for each budget fraction (None: unconstrained) of one
    (node, load), over its seeds' unconstrained scenarios, and the static cap's front."""
    first = scenarios[0]
    handle = build_node(
        first.node,
        load_frac=first.load_frac,
        seed=first.seed,
        physics=first.physics,
        slo=first.slo,
        device_speed=first.device_speed,
        device_power=first.device_power,
    )
    limits = handle.gpus[0].power_limit_constraints()
    budgets_w = [None if f is None else f * handle.max_power_w for f in budget_fracs]
    picks = oracle_picks(
        scenarios, matrix, budgets_w, limits.max_w, limits.min_w, handle.stock_batch
    )
    front = static_front(
        scenarios,
        matrix,
        [p.cap_w for p in picks.get("static-cap", [])],
        limits.min_w,
        limits.max_w,
        handle.stock_batch,
    )
    return _SearchResult(picks, front, handle.max_power_w)


def _run_task(
    scenario: Scenario,
    controller: str,
    fixed: FixedConfig | None,
    profile: Path | None,
    keep_series: bool,
    pals_overrides: dict[str, Any] | None = None,
) -> RunResult:
    return run_scenario(
        scenario,
        controller,
        fixed=fixed,
        profile_path=profile,
        keep_series=keep_series,
        pals_overrides=pals_overrides,
    )


class _InlineExecutor(Executor):
    """Runs each task at submission (``--jobs 1``): simpler to debug, no pickling."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:
            future.set_exception(err)
        return future


def _submit_picks(
    key: tuple[NodeConfig, float, float, float],
    picks: dict[str, list[OracleCandidate]],
    scenarios: list[Scenario],
    budget_fracs: list[float | None],
    searched: list[str],
    submit_run: Callable[[Scenario, str, FixedConfig | None], None],
    record: dict[str, dict[str, Any]],
) -> None:
    """Queue each seed's run of every searched controller's pick, per budget."""
    for scenario in scenarios:
        if scenario.search_key != key or scenario.budget_kind == "dynamic":
            continue
        for controller in searched:
            pick = dict(zip(budget_fracs, picks[controller], strict=True))[scenario.budget_frac]
            record[f"{scenario.key}#{controller}"] = asdict(pick)
            submit_run(scenario, controller, FixedConfig(pick.cap_w, pick.batch_limit))


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the pool must do for one matrix: the scenarios (longest first), the controllers
    that run live and those replaying a search's pick, the budgets each search ranks, and the
    (node, load, device) searches with their seeds' unconstrained scenarios."""

    scenarios: list[Scenario]
    runners: list[str]
    searched: list[str]
    budget_fracs: list[float | None]
    searches: dict[tuple[NodeConfig, float, float, float], list[Scenario]]
    nodes: list[NodeConfig]

    @property
    def expected_runs(self) -> int:
        return sum(
            len(self.runners) + (0 if s.budget_kind == "dynamic" else len(self.searched))
            for s in self.scenarios
        )


def _plan(matrix: Matrix, controllers: tuple[str, ...]) -> _Plan:
    scenarios = sorted(matrix.scenarios(), key=lambda s: -s.duration_s)
    mismatch_fracs = [f for f in matrix.mismatch_budget_fracs if f is not None]
    searches: dict[tuple[NodeConfig, float, float, float], list[Scenario]] = defaultdict(list)
    for s in sorted(scenarios, key=lambda s: s.seed):
        if s.budget_kind == "none":
            searches[s.search_key].append(s)
    return _Plan(
        scenarios=scenarios,
        runners=[c for c in controllers if c not in SEARCHED],
        searched=[c for c in controllers if c in SEARCHED],
        budget_fracs=[None, *sorted({*matrix.static_budget_fracs, *mismatch_fracs})],
        searches=searches,
        nodes=sorted({s.node for s in scenarios}, key=lambda n: n.key),
    )


class _Pool:
    """The process pool and the bookkeeping of its tasks (runs, searches, profiles)."""

    def __init__(
        self,
        executor: Executor,
        plan: _Plan,
        pals_overrides: dict[str, Any] | None,
        say: Callable[[str], None],
    ) -> None:
        self.executor = executor
        self.plan = plan
        self.pals_overrides = pals_overrides
        self.say = say
        self.pending: dict[Future[Any], tuple[str, Any]] = {}
        self.runs: list[RunResult] = []
        self.oracle: dict[str, dict[str, Any]] = {}
        self.searches: dict[tuple[NodeConfig, float, float, float], _SearchResult] = {}
        self.profiles: dict[NodeConfig, Path] = {}
        self.started = time.perf_counter()

    def submit_run(
        self, scenario: Scenario, controller: str, fixed: FixedConfig | None = None
    ) -> None:
        keep = scenario.budget_kind == "dynamic"
        profile = self.profiles.get(scenario.node) if controller == "pals" else None
        overrides = self.pals_overrides if controller == "pals" else None
        future = self.executor.submit(
            _run_task, scenario, controller, fixed, profile, keep, overrides
        )
        self.pending[future] = ("run", (scenario, controller))

    def submit_all(self, matrix: Matrix, output_dir: Path, with_pals: bool) -> None:
        """Profiles first (every PALS run needs one), then the longest runs (the dynamic
        hours), then the searches, then the short runs: the pool's tail stays short."""
        plan = self.plan
        if with_pals:
            futures = {
                node: self.executor.submit(ensure_profile, node, matrix, output_dir, matrix.physics)
                for node in plan.nodes
            }
            for node, future in futures.items():
                self.profiles[node] = future.result()
                self.say(f"profile ready: {node.key}")
        for scenario in plan.scenarios:
            if scenario.budget_kind == "dynamic":
                for controller in plan.runners:
                    self.submit_run(scenario, controller)
        if plan.searched:
            for key, seeds in plan.searches.items():
                search = self.executor.submit(_oracle_task, seeds, matrix, plan.budget_fracs)
                self.pending[search] = ("oracle", key)
        for scenario in plan.scenarios:
            if scenario.budget_kind != "dynamic":
                for controller in plan.runners:
                    self.submit_run(scenario, controller)

    def drain(self) -> None:
        """Collect results as they end; a finished search queues its picks' runs."""
        plan = self.plan
        while self.pending:
            done, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
            for future in done:
                kind, key = self.pending.pop(future)
                result = future.result()
                if kind == "oracle":
                    self.say(f"search done: {key[0].key} load {key[1]:.0%}")
                    self.searches[key] = result
                    _submit_picks(
                        key,
                        result.picks,
                        plan.scenarios,
                        plan.budget_fracs,
                        plan.searched,
                        self.submit_run,
                        self.oracle,
                    )
                    continue
                self.runs.append(result)
                self.say(
                    f"[{len(self.runs)}/{plan.expected_runs} "
                    f"{time.perf_counter() - self.started:.0f} s] "
                    f"{result.controller:>13} {result.scenario} seed {result.seed}: "
                    f"{result.tokens_per_j:.3f} tok/J, {result.qos_violated} violated, "
                    f"{result.wall_s:.1f} s"
                )


def run_paper(
    matrix: Matrix,
    output_dir: Path,
    *,
    jobs: int = 2,
    controllers: tuple[str, ...] = CONTROLLERS,
    progress: Callable[[str], None] | None = None,
    command: str = "",
    pals_overrides: dict[str, Any] | None = None,
) -> PaperOutput:
    """Run the matrix and write ``results.json`` (and ``series.json``) under ``output_dir``."""
    wall_start = time.perf_counter()
    output_dir.mkdir(parents=True, exist_ok=True)
    plan = _plan(matrix, controllers)
    executor: Executor = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else _InlineExecutor()
    pool = _Pool(executor, plan, pals_overrides, progress or (lambda _msg: None))
    with executor:
        pool.submit_all(matrix, output_dir, "pals" in controllers)
        pool.drain()
    runs = sorted(pool.runs, key=lambda r: (r.scenario, r.seed, CONTROLLERS.index(r.controller)))
    meta = {
        "command": command,
        "wall_s": time.perf_counter() - wall_start,
        "jobs": jobs,
        "cpu_count": os.cpu_count(),
        "matrix": asdict(matrix),
        "controllers": list(controllers),
    }
    front = _fronts_by_scenario(plan.scenarios, pool.searches)
    return _write_results(output_dir, runs, pool.oracle, meta, front)


def _fronts_by_scenario(
    scenarios: list[Scenario],
    searches: dict[tuple[NodeConfig, float, float, float], _SearchResult],
) -> dict[str, list[dict[str, Any]]]:
    """Per fixed scenario, the points of its search's static front that fit its budget (their
    peak power within it on every seed, as for the picks)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for scenario in scenarios:
        search = searches.get(scenario.search_key)
        if search is None or scenario.budget_kind == "dynamic" or not search.front:
            continue
        budget_w = None
        if scenario.budget_frac is not None:
            budget_w = scenario.budget_frac * search.max_power_w
        out[scenario.key] = [
            asdict(p) for p in search.front if budget_w is None or max(p.peak_power_w) <= budget_w
        ]
    return out


def _write_results(
    output_dir: Path,
    runs: list[RunResult],
    oracle: dict[str, dict[str, Any]],
    meta: dict[str, Any],
    fronts: dict[str, list[dict[str, Any]]] | None = None,
) -> PaperOutput:
    """``results.json`` (meta, summary, the searched picks, the static cap's front, every run)
    and ``series.json``."""
    run_dicts = [r.to_dict() for r in runs]
    front = fronts or {}
    summary = summarize(run_dicts, front)
    results_path = output_dir / RESULTS_FILE
    document = {
        "meta": meta,
        "summary": summary,
        "oracle": oracle,
        "static_front": front,
        "runs": run_dicts,
    }
    results_path.write_text(json.dumps(_json_safe(document), indent=1))
    series = {
        f"{r.scenario}#seed{r.seed}#{r.controller}": r.series for r in runs if r.series is not None
    }
    (output_dir / SERIES_FILE).write_text(json.dumps(_json_safe(series)))
    return PaperOutput(runs, oracle, summary, meta["wall_s"], results_path)


def add_variant(results_path: Path, name: str, summary: dict[str, Any]) -> None:
    """Store a variant's summary under ``variants.<name>`` of ``results_path``."""
    document = json.loads(results_path.read_text())
    document.setdefault("variants", {})[name] = summary
    results_path.write_text(json.dumps(_json_safe(document), indent=1))
