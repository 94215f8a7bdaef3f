"""Many simulated nodes in one process, each a real agent node: PALS controller, simulated
engine and GPUs on one shared simulation clock paced to wall time.

``--nodes SPEC``: a count (``8``: the default mix of dense and MoE models and GPU counts, in
turn) or a comma-separated list of ``[COUNTx]MODEL@GPUS`` (``2xllama-3.1-8b@1,qwen3-30b-a3b@2``).
Every node type is profiled once on a separate simulated device (cached under the data folder),
which gives PALS its model and the gateway its power-to-throughput curve; each node serves
Poisson chat traffic at ``load_frac`` of its profiled capacity.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pals_core.agent.node import NodeControl, node_spec
from pals_core.agent.telemetry import TelemetryRecorder
from pals_core.agent.trajectory import BudgetFollower, FollowerConfig
from pals_core.control.qos import QoSPolicy
from pals_core.control.runtime import LoopConfig
from pals_core.errors import ConfigurationError

if TYPE_CHECKING:
    from pals_core.sim import SimClock

DEFAULT_MIX: tuple[tuple[str, int], ...] = (
    ("llama-3.1-8b", 1),
    ("qwen3-30b-a3b", 2),
    ("llama-3.1-70b", 4),
    ("qwen3-30b-a3b", 1),
)
"""Dense and MoE models on 1, 2 and 4 GPUs."""
GPU_TYPE = "H100-SXM"
MAX_FLEET = 2000
_ITEM = re.compile(r"^(?:(\d+)x)?([A-Za-z0-9._-]+)@(\d+)$")


@dataclass(frozen=True, slots=True)
class NodeType:
    model: str
    num_gpus: int


def parse_spec(spec: str) -> list[NodeType]:
    """One :class:`NodeType` per node; refuses unknown models and uncalibrated GPU counts."""
    from pals_core.sim import MODEL_NAMES, model_profile

    text = spec.strip()
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= MAX_FLEET:
            raise ConfigurationError(
                f"--nodes: a count must be within [1, {MAX_FLEET}], got {count}"
            )
        return [NodeType(*DEFAULT_MIX[i % len(DEFAULT_MIX)]) for i in range(count)]
    out: list[NodeType] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _ITEM.match(item)
        if match is None:
            raise ConfigurationError(
                f"--nodes: {item!r} is not COUNT, or a list of [COUNTx]MODEL@GPUS "
                "(e.g. 2xllama-3.1-8b@1,qwen3-30b-a3b@2)"
            )
        count, model, gpus = int(match[1] or 1), match[2], int(match[3])
        if model not in MODEL_NAMES:
            raise ConfigurationError(
                f"--nodes: unknown model {model!r}; known: {', '.join(MODEL_NAMES)}"
            )
        counts = [n for g, n in model_profile(model).supported() if g == GPU_TYPE]
        if gpus not in counts:
            raise ConfigurationError(
                f"--nodes: {model} is calibrated on {GPU_TYPE} x{counts}, not x{gpus}"
            )
        out += [NodeType(model, gpus)] * count
    if not 1 <= len(out) <= MAX_FLEET:
        raise ConfigurationError(f"--nodes: between 1 and {MAX_FLEET} nodes, got {len(out)}")
    return out


@dataclass(frozen=True, slots=True)
class FleetOptions:
    name_prefix: str = "sim"
    load_frac: float = 0.6
    seed: int = 1
    profile_dir: Path = Path("var/fleet-profiles")
    loop: LoopConfig = field(default_factory=LoopConfig)
    lead_s: float = 1.0
    lease_s: float = 60.0
    failsafe_w: float | None = None


def _profiles(types: set[NodeType], folder: Path) -> dict[NodeType, Path]:
    from pals_core.experiments.pals_adapter import ensure_profile
    from pals_core.experiments.scenarios import NodeConfig, quick_matrix

    matrix = quick_matrix()
    return {
        t: ensure_profile(NodeConfig(t.model, GPU_TYPE, t.num_gpus), matrix, folder)
        for t in sorted(types, key=lambda t: (t.model, t.num_gpus))
    }


def build_fleet(
    types: list[NodeType], options: FleetOptions
) -> tuple[list[NodeControl], PacedClock]:
    """The nodes, and the clock to tick them on (it advances the shared simulation to the
    present each time it is read)."""
    from pals_core.control.pals import PalsController
    from pals_core.model import PerformanceModel, Profile
    from pals_core.sim import PoissonWorkload, SimClock, build_sim_node, model_profile

    paths = _profiles(set(types), options.profile_dir)
    models = {t: PerformanceModel.fit(Profile.load(p)) for t, p in paths.items()}
    clock = SimClock()
    nodes: list[NodeControl] = []
    for i, node_type in enumerate(types):
        catalog, model = model_profile(node_type.model), models[node_type]
        capacity_tok_s = max(p.throughput_tok_s for p in model.profile.points)
        rate_req_s = options.load_frac * capacity_tok_s / catalog.chat_output_mean_tok
        sim = build_sim_node(
            node_type.model,
            GPU_TYPE,
            node_type.num_gpus,
            workload=PoissonWorkload(rate_req_s),
            seed=options.seed * 10_007 + i,
            device_variation_frac=0.03,
            noise_frac=0.02,
            clock=clock,
        )
        qos = QoSPolicy(itl_p99_slo_s=catalog.default_itl_p99_slo_s)
        spec = node_spec(f"{options.name_prefix}-{i + 1:03d}", sim.gpus, model)
        follower = BudgetFollower(
            FollowerConfig(
                min_power_w=spec.min_power_w,
                max_power_w=spec.max_power_w,
                lead_s=options.lead_s,
                lease_s=options.lease_s,
                failsafe_w=options.failsafe_w,
            )
        )
        policy = PalsController(model, num_gpus=node_type.num_gpus, qos=qos)
        nodes.append(
            NodeControl(
                spec,
                sim.gpus,
                sim.engine,
                policy,
                follower,
                TelemetryRecorder(qos),
                options.loop,
                decide_phase=i,
            )
        )
    return nodes, PacedClock(clock)


class PacedClock:
    """The fleet's control clock: reading it (``clock()``, monotonic seconds) first advances
    the shared simulation to the present."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._wall0, self._sim0 = time.monotonic(), clock.now_s()

    @property
    def simulation(self) -> SimClock:
        """The shared simulation clock (benchmarks drive it directly)."""
        return self._clock

    def __call__(self) -> float:
        self._clock.advance_to(self._sim0 + time.monotonic() - self._wall0)
        return self._clock.now_s()

    def counters_age_s(self, sim_s: float) -> float:
        """How long before ``sim_s`` (a reading of this clock) the simulated GPUs' energy
        counters were refreshed (they refresh on a fixed grid, :data:`UPDATE_PERIOD_S`)."""
        from pals_core.sim.sensor import UPDATE_PERIOD_S

        refreshed_s = math.floor(sim_s / UPDATE_PERIOD_S + 1e-9) * UPDATE_PERIOD_S
        return max(0.0, sim_s - refreshed_s)
