"""Compare the simulator with the calibration measurements, point by point.

Data: ``../shared/calibration/`` beside the repository (``PALS_CALIBRATION_DIR`` overrides).
This module is the only reader of the calibration CSVs; the simulator never reads them.

Points:
* ML.ENERGY batch sweeps on H100 (``batch_sweep.csv``): throughput, power per GPU and median ITL
  at each ``max_num_seqs``, measured like the benchmark: saturating load (request_rate=inf),
  steady-state window. Duplicate configurations are averaged.
* Emerald AI cap sweep, ``infer_llama_8b`` rows (``cap_sweep.csv``; taken to be A100-SXM 400 W):
  normalized throughput and drawn power per GPU at each cap. The simulator runs Llama-3.1-8B on
  one A100 at batch ``A100_CAP_SWEEP_BATCH`` under saturating load (see docs/simulator.md).
* MLPerf Inference MaxQ/MaxP pairs on H100/H200 (``mlperf_power_caps.csv``): the throughput ratio
  under a power limit (:mod:`pals_core.sim.calibration_mlperf`).

Every point is simulated with each of ``CALIBRATION_SEEDS``; a comparison holds the per-seed
values, its error is that of the seed mean, and the worst seed's error is reported beside it.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pals_core.errors import ConfigurationError
from pals_core.sim.dvfs import DEFAULT_PHYSICS, check_physics
from pals_core.sim.node import SteadyState, build_sim_node, measure_saturated
from pals_core.sim.workload import SaturatingWorkload

A100_CAP_SWEEP_BATCH = 256
CALIBRATION_SEEDS: tuple[int, ...] = (1, 2, 3, 4, 5)
MEAN_TOLERANCE = 0.10
"""Acceptance bar on the seed-mean error of every point."""
WORST_SEED_TOLERANCE = 0.15
"""Acceptance bar on the worst single seed's error of every point."""
CAP_SWEEP_DATASET = "cap-sweep/infer_llama_8b/A100-SXMx1"

HF_TO_MODEL = {
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "meta-llama/Llama-3.1-70B-Instruct": "llama-3.1-70b",
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "qwen3-30b-a3b",
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": "qwen3-235b-a22b-fp8",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": "llama-4-scout",
}
# The datasets the 10% acceptance bar applies to; the others are reported.
ACCEPTANCE_DATASETS = (
    "llama-3.1-8b/H100-SXMx1",
    "llama-3.1-70b/H100-SXMx4",
    "qwen3-30b-a3b/H100-SXMx2",
    CAP_SWEEP_DATASET,
    "mlperf/llama2-70b/H100-SXMx2",
    "mlperf/gpt-j-6b/H100-SXMx1",
    "mlperf/llama2-70b/H200-SXMx1",
)
BATCH_METRICS = ("throughput_tok_s", "power_w_per_gpu", "itl_median_ms")


def calibration_dir(override: str | Path | None = None) -> Path:
    """``override``, else ``$PALS_CALIBRATION_DIR``, else ``<repo>/../shared/calibration``."""
    if override is not None:
        return Path(override)
    env = os.environ.get("PALS_CALIBRATION_DIR")
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "calibration"


@dataclass(frozen=True, slots=True)
class BatchPoint:
    model: str
    gpu: str
    num_gpus: int
    batch_size: int
    avg_batch_size: float
    throughput_tok_s: float
    power_w_per_gpu: float
    itl_median_ms: float

    @property
    def dataset(self) -> str:
        return f"{self.model}/{self.gpu}x{self.num_gpus}"


@dataclass(frozen=True, slots=True)
class CapPoint:
    cap_w: float
    normalized_throughput: float
    power_w_per_gpu: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """One measured figure against its simulated value under each calibration seed."""

    dataset: str
    x_name: str
    x: float
    metric: str
    source: float
    simulated_by_seed: tuple[float, ...]

    @property
    def simulated(self) -> float:
        """The seed mean."""
        return sum(self.simulated_by_seed) / len(self.simulated_by_seed)

    @property
    def rel_error(self) -> float:
        """Relative error of the seed mean."""
        return (self.simulated - self.source) / self.source

    @property
    def worst_seed_rel_error(self) -> float:
        """The single seed's relative error of largest magnitude (signed)."""
        return max(((v - self.source) / self.source for v in self.simulated_by_seed), key=abs)

    @property
    def accepted(self) -> bool:
        return (
            abs(self.rel_error) <= MEAN_TOLERANCE
            and abs(self.worst_seed_rel_error) <= WORST_SEED_TOLERANCE
        )

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "simulated_by_seed": list(self.simulated_by_seed),
            "seed_mean": self.simulated,
            "rel_error": self.rel_error,
            "worst_seed_rel_error": self.worst_seed_rel_error,
        }


def load_batch_points(data_dir: Path) -> list[BatchPoint]:
    """H100 batch-sweep rows of the five catalog models, duplicates averaged."""
    path = data_dir / "batch_sweep.csv"
    groups: dict[tuple[str, int, int], list[dict[str, str]]] = defaultdict(list)
    with _open(path) as rows:
        for row in rows:
            model = HF_TO_MODEL.get(row["model"])
            if model is None or row["gpu"] != "H100":
                continue
            groups[(model, int(row["num_gpus"]), int(row["batch_size"]))].append(row)
    points = []
    for (model, n, batch), rows_ in sorted(groups.items()):

        def mean(col: str, rows_: list[dict[str, str]] = rows_) -> float:
            return sum(float(r[col]) for r in rows_) / len(rows_)

        points.append(
            BatchPoint(
                model,
                "H100-SXM",
                n,
                batch,
                mean("avg_batch_size"),
                mean("throughput_tok_s"),
                mean("power_w_per_gpu"),
                mean("itl_median_ms"),
            )
        )
    return points


def load_cap_points(data_dir: Path, workload: str = "infer_llama_8b") -> list[CapPoint]:
    path = data_dir / "cap_sweep.csv"
    with _open(path) as rows:
        points = [
            CapPoint(
                float(r["GPU power cap"]),
                float(r["normalized throughput"]),
                float(r["power per GPU"]),
            )
            for r in rows
            if r["Workload"] == workload
        ]
    if not points:
        raise ConfigurationError(f"{path}: no rows for workload {workload!r}")
    return sorted(points, key=lambda p: p.cap_w)


class _open:
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise ConfigurationError(
                f"calibration file {path} not found (set PALS_CALIBRATION_DIR or --data)"
            )
        self._f = path.open(newline="")

    def __enter__(self) -> Iterable[dict[str, str]]:
        return csv.DictReader(self._f)

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def simulate_batch_point(p: BatchPoint, seed: int, **overrides: Any) -> SteadyState:
    """Run batch point ``p`` with ``seed``; ``overrides`` go to :func:`build_sim_node` (``fit``,
    ``spec``, ``dvfs``, ``physics``, ``prompt_mean_tok``)."""
    node = build_sim_node(
        p.model,
        p.gpu,
        p.num_gpus,
        workload=SaturatingWorkload(),
        seed=seed,
        batch_limit=p.batch_size,
        **overrides,
    )
    return measure_saturated(node)


def simulate_cap_point(cap_w: float, seed: int, **overrides: Any) -> SteadyState:
    node = build_sim_node(
        "llama-3.1-8b",
        "A100-SXM",
        1,
        workload=SaturatingWorkload(),
        seed=seed,
        batch_limit=A100_CAP_SWEEP_BATCH,
        **overrides,
    )
    node.gpus.set_power_limit_w(0, cap_w)
    return measure_saturated(node)


def compare_batch(
    points: list[BatchPoint], seeds: Sequence[int] = CALIBRATION_SEEDS, **overrides: Any
) -> list[Comparison]:
    out = []
    for p in points:
        runs = [simulate_batch_point(p, seed, **overrides) for seed in seeds]
        sims = [(s.throughput_tok_s, s.power_w_per_gpu, s.itl_median_s * 1e3) for s in runs]
        src = (p.throughput_tok_s, p.power_w_per_gpu, p.itl_median_ms)
        for i, metric in enumerate(BATCH_METRICS):
            values = tuple(sim[i] for sim in sims)
            out.append(Comparison(p.dataset, "batch_size", p.batch_size, metric, src[i], values))
    return out


def compare_caps(
    points: list[CapPoint], seeds: Sequence[int] = CALIBRATION_SEEDS, **overrides: Any
) -> list[Comparison]:
    caps = sorted({p.cap_w for p in points})
    runs = {seed: {c: simulate_cap_point(c, seed, **overrides) for c in caps} for seed in seeds}
    out = []
    for p in points:
        tput = tuple(
            r[p.cap_w].throughput_tok_s / r[max(caps)].throughput_tok_s for r in runs.values()
        )
        power = tuple(r[p.cap_w].power_w_per_gpu for r in runs.values())
        out.append(
            Comparison(
                CAP_SWEEP_DATASET,
                "cap_w",
                p.cap_w,
                "normalized_throughput",
                p.normalized_throughput,
                tput,
            )
        )
        out.append(
            Comparison(
                CAP_SWEEP_DATASET, "cap_w", p.cap_w, "power_w_per_gpu", p.power_w_per_gpu, power
            )
        )
    return out


def run_calibration(
    data_dir: Path | None = None,
    datasets: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
    seeds: Sequence[int] = CALIBRATION_SEEDS,
    physics: str = DEFAULT_PHYSICS,
) -> list[Comparison]:
    """Every comparison point (acceptance datasets first, then the larger MoE sweeps)."""
    from pals_core.sim.calibration_mlperf import MLPERF_DATASETS, compare_mlperf, load_mlperf_pairs

    directory = calibration_dir(data_dir)
    check_physics(physics)
    wanted = set(datasets) if datasets is not None else None
    by_dataset: dict[str, list[BatchPoint]] = defaultdict(list)
    for p in load_batch_points(directory):
        by_dataset[p.dataset].append(p)
    order = [d for d in ACCEPTANCE_DATASETS if d in by_dataset] + sorted(
        d for d in by_dataset if d not in ACCEPTANCE_DATASETS
    )
    out: list[Comparison] = []
    for name in order:
        if wanted is not None and name not in wanted:
            continue
        if progress:
            progress(name)
        out.extend(compare_batch(by_dataset[name], seeds, physics=physics))
    if wanted is None or CAP_SWEEP_DATASET in wanted:
        if progress:
            progress(CAP_SWEEP_DATASET)
        out.extend(compare_caps(load_cap_points(directory), seeds, physics=physics))
    mlperf_file = directory / "mlperf_power_caps.csv"
    chosen = [d for d in MLPERF_DATASETS if wanted is None or d in wanted]
    if chosen and mlperf_file.is_file():
        for pair in load_mlperf_pairs(directory):
            if pair.dataset in chosen:
                if progress:
                    progress(pair.dataset)
                out.append(compare_mlperf(pair, seeds, physics=physics))
    return out


def summarize(comparisons: list[Comparison]) -> dict[str, object]:
    """JSON-ready summary: per dataset the largest |seed-mean error| and |worst-seed error|,
    the acceptance verdict over the acceptance datasets, and every point."""
    mean_by: dict[str, float] = {}
    worst_by: dict[str, float] = {}
    for c in comparisons:
        mean_by[c.dataset] = max(mean_by.get(c.dataset, 0.0), abs(c.rel_error))
        worst_by[c.dataset] = max(worst_by.get(c.dataset, 0.0), abs(c.worst_seed_rel_error))
    accepted = [c for c in comparisons if c.dataset in ACCEPTANCE_DATASETS]
    return {
        "seeds": sorted({len(c.simulated_by_seed) for c in comparisons}),
        "mean_tolerance": MEAN_TOLERANCE,
        "worst_seed_tolerance": WORST_SEED_TOLERANCE,
        "max_abs_rel_error": max((abs(c.rel_error) for c in accepted), default=None),
        "max_abs_worst_seed_rel_error": max(
            (abs(c.worst_seed_rel_error) for c in accepted), default=None
        ),
        "accepted": all(c.accepted for c in accepted),
        "acceptance_datasets": list(ACCEPTANCE_DATASETS),
        "max_abs_rel_error_by_dataset": mean_by,
        "max_abs_worst_seed_rel_error_by_dataset": worst_by,
        "points": [c.as_dict() for c in comparisons],
    }
