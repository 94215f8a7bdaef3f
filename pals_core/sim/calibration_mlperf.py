"""MLPerf Inference MaxQ/MaxP pairs as calibration points: throughput kept under a power limit.

``mlperf_power_caps.csv`` (see its README) holds NVIDIA's closed-division Offline runs of the same
configuration at the default limit (MaxP, 700 W) and under a limit (MaxQ): Llama-2-70B on H100
(2 GPUs per instance, 450 W), GPT-J-6B on H100 (1 GPU, 350 W), Llama-2-70B on H200 (1 GPU,
500 W). Only the ratio is compared (engine and precision differ from the ML.ENERGY data). Server
rows are lower bounds chosen by the submitter, not measurements of capacity, and are skipped.

The simulated stand-ins, all FP8 weights, compute and KV cache as TensorRT-LLM ran them:

* Llama-2-70B: the Llama-3.1-70B architecture (same layers, heads, KV heads, hidden and MLP
  sizes; only the vocabulary differs) with the fitted Llama-3.1-70B H100 x4 deployment constants.
* GPT-J-6B: 28 layers, 16 heads of 256 (no grouped KV), 6.05 B parameters, with the fitted
  Llama-3.1-8B H100 x1 deployment constants.
* H200: the H100 die (same DVFS constants, clocks, FLOPs) with 141 GB of HBM3e at 4.8 TB/s and its
  own idle draw (gpu_limits.csv).

Request lengths are not in the results files: OpenOrca (Llama-2-70B) is taken as ~300 prompt and
~300 output tokens, CNN-DailyMail (GPT-J) as ~800 prompt and ~70 output tokens (prefill-heavy).
The batch is the submission's per-instance batch, under saturating load (Offline).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pals_core.errors import ConfigurationError
from pals_core.sim.calibration import CALIBRATION_SEEDS, Comparison
from pals_core.sim.clock import SimClock
from pals_core.sim.dvfs import DEFAULT_PHYSICS
from pals_core.sim.hardware import GPUSpec, gpu_spec
from pals_core.sim.memory import physical_kv_capacity_tokens
from pals_core.sim.models import DeploymentFit, ModelProfile, model_profile
from pals_core.sim.node import SimNode, measure_saturated
from pals_core.sim.workload import SaturatingWorkload

MLPERF_DATASETS = (
    "mlperf/llama2-70b/H100-SXMx2",
    "mlperf/gpt-j-6b/H100-SXMx1",
    "mlperf/llama2-70b/H200-SXMx1",
)
_GPU_NAMES = {"H100-SXM-80GB": "H100-SXM", "H200-SXM-141GB": "H200-SXM"}
_PROMPT_MEAN_TOK = {"llama2-70b": 300.0, "gpt-j-6b": 800.0}
_OUTPUT_MEAN_TOK = {"llama2-70b": 300.0, "gpt-j-6b": 70.0}


@dataclass(frozen=True, slots=True)
class MlperfPair:
    model: str
    gpu: str
    num_gpus: int
    batch_size: int
    cap_w: float
    ratio: float
    """Throughput under ``cap_w`` over throughput at the default limit."""

    @property
    def dataset(self) -> str:
        return f"mlperf/{self.model}/{self.gpu}x{self.num_gpus}"


def load_mlperf_pairs(data_dir: Path) -> list[MlperfPair]:
    """The Offline MaxQ/MaxP pairs of ``mlperf_power_caps.csv``."""
    path = data_dir / "mlperf_power_caps.csv"
    if not path.is_file():
        raise ConfigurationError(f"calibration file {path} not found")
    groups: dict[tuple[str, str, str], dict[float, dict[str, str]]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["scenario"] != "Offline" or row["metric"] != "throughput":
                continue
            key = (row["round"], row["gpu"], row["model"])
            groups.setdefault(key, {})[float(row["power_limit_w"])] = row
    pairs = []
    for (_, gpu, model), rows in sorted(groups.items()):
        if len(rows) != 2:
            continue
        default_w, cap_w = max(rows), min(rows)
        top, capped = rows[default_w], rows[cap_w]
        pairs.append(
            MlperfPair(
                model=model,
                gpu=_GPU_NAMES[gpu],
                num_gpus=int(top["num_gpus_per_instance"]),
                batch_size=int(top["batch_per_instance"]),
                cap_w=cap_w,
                ratio=float(capped["value"]) / float(top["value"]),
            )
        )
    return pairs


def stand_in(pair: MlperfPair) -> tuple[ModelProfile, GPUSpec, DeploymentFit]:
    """The simulated model, GPU and deployment constants standing in for ``pair``."""
    h100 = gpu_spec("H100-SXM")
    spec = h100
    if pair.gpu == "H200-SXM":
        spec = dataclasses.replace(
            h100,
            name="H200-SXM",
            product_name="NVIDIA H200",
            idle_w=74.58,
            hbm_bandwidth_bytes_s=4.8e12,
            memory_bytes=143771 * 1024**2,
        )
    if pair.model == "llama2-70b":
        base = model_profile("llama-3.1-70b")
        profile = dataclasses.replace(
            base,
            name="llama2-70b",
            kv_bytes_per_token=base.kv_bytes_per_token // 2,
            weight_bytes_per_param=1.0,
            fp8_compute=True,
        )
        fit = base.deployment("H100-SXM", 4)
    else:
        profile = dataclasses.replace(
            model_profile("llama-3.1-8b"),
            name="gpt-j-6b",
            total_params=6.05e9,
            active_params=6.05e9,
            num_layers=28,
            kv_bytes_per_token=2 * 28 * 16 * 256,
            weight_bytes_per_param=1.0,
            fp8_compute=True,
        )
        fit = model_profile("llama-3.1-8b").deployment("H100-SXM", 1)
    profile = dataclasses.replace(
        profile, chat_output_mean_tok=_OUTPUT_MEAN_TOK[pair.model], deployments={}
    )
    kv = physical_kv_capacity_tokens(profile, spec, pair.num_gpus)
    return profile, spec, dataclasses.replace(fit, kv_capacity_tokens=kv)


def simulate_ratio(pair: MlperfPair, seed: int, **overrides: Any) -> float:
    """Simulated throughput under the pair's limit over that at the default limit."""
    profile, spec, fit = stand_in(pair)
    fit = overrides.pop("fit", fit)
    tput = []
    for cap_w in (spec.default_cap_w, pair.cap_w):
        node = SimNode(
            profile,
            spec,
            pair.num_gpus,
            fit,
            SaturatingWorkload(),
            SimClock(),
            seed,
            0.0,
            0.0,
            pair.batch_size,
            0.05,
            8192,
            overrides.get("physics", DEFAULT_PHYSICS),
            overrides.get("dvfs"),
            _PROMPT_MEAN_TOK[pair.model],
        )
        node.gpus.set_power_limits_w([cap_w] * pair.num_gpus)
        tput.append(measure_saturated(node, window_turnovers=3.0).throughput_tok_s)
    return tput[1] / tput[0]


def compare_mlperf(
    pair: MlperfPair, seeds: Sequence[int] = CALIBRATION_SEEDS, **overrides: Any
) -> Comparison:
    values = tuple(simulate_ratio(pair, seed, **overrides) for seed in seeds)
    return Comparison(pair.dataset, "cap_w", pair.cap_w, "throughput_ratio", pair.ratio, values)
