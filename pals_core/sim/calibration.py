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
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from pals_core.errors import ConfigurationError
from pals_core.sim.hardware import GPUSpec, gpu_spec
from pals_core.sim.models import DeploymentFit, model_profile
from pals_core.sim.node import SteadyState, build_sim_node, measure_saturated
from pals_core.sim.workload import SaturatingWorkload

A100_CAP_SWEEP_BATCH = 256
CALIBRATION_SEED = 7

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
    "cap-sweep/infer_llama_8b/A100-SXMx1",
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
    dataset: str
    x_name: str
    x: float
    metric: str
    source: float
    simulated: float

    @property
    def rel_error(self) -> float:
        return (self.simulated - self.source) / self.source

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "rel_error": self.rel_error}


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


def simulate_batch_point(
    p: BatchPoint, fit: DeploymentFit | None = None, spec: GPUSpec | None = None
) -> SteadyState:
    node = build_sim_node(
        p.model,
        p.gpu,
        p.num_gpus,
        workload=SaturatingWorkload(),
        seed=CALIBRATION_SEED,
        batch_limit=p.batch_size,
        fit=fit,
        spec=spec,
    )
    return measure_saturated(node)


def simulate_cap_point(
    cap_w: float, fit: DeploymentFit | None = None, spec: GPUSpec | None = None
) -> SteadyState:
    node = build_sim_node(
        "llama-3.1-8b",
        "A100-SXM",
        1,
        workload=SaturatingWorkload(),
        seed=CALIBRATION_SEED,
        batch_limit=A100_CAP_SWEEP_BATCH,
        fit=fit,
        spec=spec,
    )
    node.gpus.set_power_limit_w(0, cap_w)
    return measure_saturated(node)


def compare_batch(points: list[BatchPoint], fit: DeploymentFit | None = None) -> list[Comparison]:
    out = []
    for p in points:
        s = simulate_batch_point(p, fit)
        sim = (s.throughput_tok_s, s.power_w_per_gpu, s.itl_median_s * 1e3)
        src = (p.throughput_tok_s, p.power_w_per_gpu, p.itl_median_ms)
        for metric, a, b in zip(BATCH_METRICS, src, sim, strict=True):
            out.append(Comparison(p.dataset, "batch_size", p.batch_size, metric, a, b))
    return out


def compare_caps(
    points: list[CapPoint], fit: DeploymentFit | None = None, spec: GPUSpec | None = None
) -> list[Comparison]:
    runs = {p.cap_w: simulate_cap_point(p.cap_w, fit, spec) for p in points}
    top = runs[max(runs)].throughput_tok_s
    dataset = "cap-sweep/infer_llama_8b/A100-SXMx1"
    out = []
    for p in points:
        s = runs[p.cap_w]
        out.append(
            Comparison(
                dataset,
                "cap_w",
                p.cap_w,
                "normalized_throughput",
                p.normalized_throughput,
                s.throughput_tok_s / top,
            )
        )
        out.append(
            Comparison(
                dataset, "cap_w", p.cap_w, "power_w_per_gpu", p.power_w_per_gpu, s.power_w_per_gpu
            )
        )
    return out


def run_calibration(
    data_dir: Path | None = None,
    datasets: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Comparison]:
    """Every comparison point (acceptance datasets first, then the larger MoE sweeps)."""
    directory = calibration_dir(data_dir)
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
        out.extend(compare_batch(by_dataset[name]))
    cap_name = "cap-sweep/infer_llama_8b/A100-SXMx1"
    if wanted is None or cap_name in wanted:
        if progress:
            progress(cap_name)
        gpu_spec("A100-SXM")
        model_profile("llama-3.1-8b")
        out.extend(compare_caps(load_cap_points(directory)))
    return out


def summarize(comparisons: list[Comparison]) -> dict[str, object]:
    """JSON-ready summary: overall and per-dataset max |relative error| over the acceptance
    datasets, plus every point."""
    per_dataset: dict[str, float] = {}
    for c in comparisons:
        per_dataset[c.dataset] = max(per_dataset.get(c.dataset, 0.0), abs(c.rel_error))
    accepted = [v for k, v in per_dataset.items() if k in ACCEPTANCE_DATASETS]
    return {
        "max_abs_rel_error": max(accepted) if accepted else None,
        "acceptance_datasets": list(ACCEPTANCE_DATASETS),
        "max_abs_rel_error_by_dataset": per_dataset,
        "points": [c.as_dict() for c in comparisons],
    }
