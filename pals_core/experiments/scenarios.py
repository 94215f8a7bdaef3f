"""The scenario matrix of the paper experiment.

A :class:`Scenario` fixes everything but the controller: the node (model, GPU type, count), the
offered load as a fraction of the node's saturated capacity, the budget (none, a static fraction
of the node's maximum power, or the dynamic hour), the seed (arrivals, request lengths, device
variation, noise), the duration and the warm-up excluded from the efficiency and QoS figures.
Every controller runs every scenario with the same seed, hence the same requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pals_core.errors import ConfigurationError
from pals_core.experiments.budgets import BudgetTrace, dynamic_hour

BudgetKind = Literal["none", "static", "dynamic"]
CONTROLLERS: tuple[str, ...] = (
    "stock",
    "static-cap",
    "cap-only",
    "cap-latency",
    "batch-only",
    "oracle-static",
    "pals",
)
SEARCHED: tuple[str, ...] = ("static-cap", "oracle-static")
"""Controllers replaying a fixed configuration found by the search (none on dynamic budgets)."""
DEVICE_VARIATION_FRAC = 0.03
NOISE_FRAC = 0.02
PROFILE_SEED_OFFSET = 100_000
"""PALS profiles another simulated device of the same type: the scenario seed plus this."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    model: str
    gpu: str
    num_gpus: int

    @property
    def key(self) -> str:
        return f"{self.model}@{self.num_gpus}x{self.gpu}"


@dataclass(frozen=True, slots=True)
class Scenario:
    node: NodeConfig
    load_frac: float
    budget_kind: BudgetKind
    budget_frac: float | None
    seed: int
    duration_s: float
    warmup_s: float
    physics: str = "nominal"
    """The simulator's physics variant (``pals_core.sim.PHYSICS_VARIANTS``)."""
    slo: str = "relaxed"
    """The latency SLO level (:mod:`pals_core.experiments.slos`)."""
    regulation_base_frac: float = 0.75
    """The dynamic trace's regulation signal's centre (fraction of max power)."""
    device_speed: float = 1.0
    device_power: float = 1.0
    """The true device against the profiled one: its compute and memory rates, and its power
    draw, as factors (PALS's profile is always of a nominal device)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.load_frac <= 1.5:
            raise ConfigurationError(f"load_frac must be within (0, 1.5], got {self.load_frac}")
        if (self.budget_kind == "static") != (self.budget_frac is not None):
            raise ConfigurationError("budget_frac is required for, and only for, static budgets")
        if not 0 <= self.warmup_s < self.duration_s:
            raise ConfigurationError("warmup_s must be within [0, duration_s)")

    @property
    def budget_label(self) -> str:
        if self.budget_kind == "static":
            assert self.budget_frac is not None
            return f"static-{round(self.budget_frac * 100)}%"
        return self.budget_kind

    @property
    def key(self) -> str:
        """Identifies the scenario across seeds."""
        key = f"{self.node.key}/load-{round(self.load_frac * 100)}%/{self.budget_label}"
        if self.mismatched:
            key += f"/device-speed{self.device_speed:g}-power{self.device_power:g}"
        return key

    @property
    def mismatched(self) -> bool:
        return (self.device_speed, self.device_power) != (1.0, 1.0)

    @property
    def search_key(self) -> tuple[NodeConfig, float, float, float]:
        """What the oracle's search depends on: the node, the load and the true device."""
        return (self.node, self.load_frac, self.device_speed, self.device_power)

    @property
    def constrained(self) -> bool:
        return self.budget_kind != "none"

    def budget_trace(self) -> BudgetTrace | None:
        if self.budget_kind == "none":
            return None
        if self.budget_kind == "static":
            assert self.budget_frac is not None
            return BudgetTrace.constant(self.budget_frac)
        return dynamic_hour(
            self.seed, duration_s=self.duration_s, regulation_base_frac=self.regulation_base_frac
        )

    def unconstrained(self) -> Scenario:
        """The same load and seed without a budget (the oracle's search shares it)."""
        return replace(self, budget_kind="none", budget_frac=None)


@dataclass(frozen=True, slots=True)
class Matrix:
    nodes: tuple[NodeConfig, ...]
    load_fracs: tuple[float, ...]
    static_budget_fracs: tuple[float, ...]
    seeds: tuple[int, ...]
    static_duration_s: float
    dynamic_duration_s: float
    dynamic_load_fracs: tuple[float, ...]
    """The dynamic hour runs at each of these loads: a comfortable one, where the budget seldom
    binds for an efficient controller, and a high one, where it binds and its falls must be
    tracked."""
    warmup_s: float
    oracle_search_s: float
    """The shortened horizon of the oracle's exhaustive search."""
    oracle_finalists: int
    """Best configurations per budget re-run on the full scenario before the final pick."""
    oracle_max_verified: int
    """... and on down the short ranking until one is clean on the full run, at most this many."""
    profile_caps_frac: tuple[float, ...]
    profile_batches: tuple[int, ...]
    profile_warmup_s: float
    profile_window_s: float
    oracle_cap_step_w: float = 25.0
    """The search's cap grid: from the GPU's minimum cap up to its maximum in this step."""
    static_front_span_w: float = 100.0
    """The static cap's front: the grid's caps within this of its picks, each run on every seed
    (0: none), to compare PALS with the best fixed cap at PALS's own QoS."""
    physics: str = "nominal"
    slo: str = "relaxed"
    regulation_base_frac: float = 0.75
    mismatch_node: NodeConfig | None = None
    mismatch_load_frac: float = 0.7
    mismatch_budget_fracs: tuple[float | None, ...] = (None, 0.6)
    mismatches: tuple[tuple[float, float], ...] = ()
    """(speed, power) factors of true devices unlike the profiled one: ``mismatch_node`` at
    ``mismatch_load_frac`` runs each, unconstrained and under each of the budgets."""

    @property
    def oracle_batches(self) -> tuple[int, ...]:
        """Every batch level PALS may choose: the profiled ones from its smallest batch up."""
        from pals_core.control.pals_state import PalsConfig

        return tuple(b for b in self.profile_batches if b >= PalsConfig().min_batch)

    def scenarios(self) -> list[Scenario]:
        out: list[Scenario] = []
        for node in self.nodes:
            for seed in self.seeds:
                for load in self.load_fracs:
                    budgets: list[tuple[BudgetKind, float | None]] = [("none", None)]
                    budgets += [("static", f) for f in self.static_budget_fracs]
                    for kind, frac in budgets:
                        out.append(
                            Scenario(
                                node,
                                load,
                                kind,
                                frac,
                                seed,
                                self.static_duration_s,
                                self.warmup_s,
                                self.physics,
                                self.slo,
                            )
                        )
                if self.dynamic_duration_s > 0:
                    for load in self.dynamic_load_fracs:
                        out.append(
                            Scenario(
                                node,
                                load,
                                "dynamic",
                                None,
                                seed,
                                self.dynamic_duration_s,
                                self.warmup_s,
                                self.physics,
                                self.slo,
                                self.regulation_base_frac,
                            )
                        )
        for seed in self.seeds:
            out += self._mismatched(seed)
        return out

    def _mismatched(self, seed: int) -> list[Scenario]:
        if self.mismatch_node is None:
            return []
        return [
            Scenario(
                self.mismatch_node,
                self.mismatch_load_frac,
                "none" if frac is None else "static",
                frac,
                seed,
                self.static_duration_s,
                self.warmup_s,
                self.physics,
                self.slo,
                device_speed=speed,
                device_power=power,
            )
            for speed, power in self.mismatches
            for frac in self.mismatch_budget_fracs
        ]


DENSE_SMALL = NodeConfig("llama-3.1-8b", "H100-SXM", 1)
DENSE_LARGE = NodeConfig("llama-3.1-70b", "H100-SXM", 4)
MOE_SMALL = NodeConfig("qwen3-30b-a3b", "H100-SXM", 2)
MOE_LARGE = NodeConfig("qwen3-235b-a22b-fp8", "H100-SXM", 8)

_PROFILE = {
    "profile_caps_frac": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "profile_batches": (1, 4, 8, 16, 32, 64, 128, 256),
}


def full_matrix(seeds: int = 5, physics: str = "nominal", slo: str = "relaxed") -> Matrix:
    """The paper matrix: 4 nodes x 2 loads x (unconstrained + 3 static budgets, 45-75 % of max
    power) + a dynamic 10 minutes at 70 % load whose regulation signal (45 +- 10 % of max power)
    runs below the node's draw, each over ``seeds`` seeds."""
    return Matrix(
        nodes=(DENSE_SMALL, DENSE_LARGE, MOE_SMALL, MOE_LARGE),
        load_fracs=(0.3, 0.7),
        static_budget_fracs=(0.45, 0.6, 0.75),
        seeds=tuple(range(1, seeds + 1)),
        static_duration_s=120.0,
        dynamic_duration_s=600.0,
        dynamic_load_fracs=(0.7,),
        warmup_s=20.0,
        oracle_search_s=20.0,
        oracle_finalists=1,
        oracle_max_verified=8,
        profile_warmup_s=5.0,
        profile_window_s=10.0,
        oracle_cap_step_w=25.0,
        physics=physics,
        slo=slo,
        regulation_base_frac=0.45,
        mismatch_node=DENSE_SMALL,
        mismatches=((0.8, 1.0), (1.2, 1.0), (1.0, 0.8), (1.0, 1.2), (0.8, 1.2), (1.2, 0.8)),
        **_PROFILE,  # type: ignore[arg-type]
    )


def quick_matrix(seeds: int = 1, physics: str = "nominal", slo: str = "relaxed") -> Matrix:
    """A reduced matrix for CI (one dense and one MoE node, two loads, one budget, a 10-minute
    dynamic trace, a 50 W search grid): the same code paths in well under a minute."""
    return Matrix(
        nodes=(DENSE_SMALL, MOE_SMALL),
        load_fracs=(0.4, 0.8),
        static_budget_fracs=(0.6,),
        seeds=tuple(range(1, seeds + 1)),
        static_duration_s=60.0,
        dynamic_duration_s=600.0,
        dynamic_load_fracs=(0.8,),
        warmup_s=15.0,
        oracle_search_s=30.0,
        oracle_finalists=2,
        oracle_max_verified=3,
        profile_caps_frac=(0.4, 0.6, 0.8, 1.0),
        profile_batches=(4, 16, 64, 256),
        profile_warmup_s=3.0,
        profile_window_s=6.0,
        oracle_cap_step_w=50.0,
        static_front_span_w=50.0,
        physics=physics,
        slo=slo,
        regulation_base_frac=0.45,
    )


VARIANTS: dict[str, dict[str, str]] = {
    "pessimistic": {"physics": "pessimistic"},
    "tight-slo": {"slo": "tight"},
}
"""The matrix's variants (``results.json`` ``variants.<name>``): the pessimistic physics of the
simulator, and MLPerf's interactive (tight) latency limits."""


def variant_matrix(matrix: Matrix, name: str) -> Matrix:
    """``matrix`` under variant ``name``; a clear error for an unknown one or one this simulator
    does not provide."""
    from pals_core.sim import PHYSICS_VARIANTS

    if name not in VARIANTS:
        raise ConfigurationError(f"unknown variant {name!r}; allowed: {', '.join(VARIANTS)}")
    changes = VARIANTS[name]
    physics = changes.get("physics", matrix.physics)
    if physics not in PHYSICS_VARIANTS:
        raise ConfigurationError(
            f"variant {name!r} needs the simulator's {physics!r} physics; this simulator has "
            f"{', '.join(PHYSICS_VARIANTS)}"
        )
    return replace(matrix, **changes)  # type: ignore[arg-type]


def only_nodes(matrix: Matrix, keys: list[str]) -> Matrix:
    """``matrix`` restricted to the nodes named by ``keys`` (``NodeConfig.key``); the mismatch
    scenarios stay only if their node is among them. An unknown key is refused, naming those
    allowed."""
    known = {n.key: n for n in matrix.nodes}
    unknown = sorted(set(keys) - set(known))
    if unknown:
        raise ConfigurationError(
            f"unknown node(s) {', '.join(unknown)}; allowed: {', '.join(known)}"
        )
    kept = tuple(known[k] for k in known if k in keys)
    mismatch = matrix.mismatch_node if matrix.mismatch_node in kept else None
    return replace(matrix, nodes=kept, mismatch_node=mismatch)
