"""PALS in the experiments: its profile, taken once per (model, node type), and the controller.

As in reality, the profile is measured on *another* device of the same type: a simulated node
with its own seed (hence its own per-GPU variation and noise) under a saturating load, before
and apart from every scenario. It is cached as JSON under the output folder, so a rerun reuses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pals_core.control.policy import Policy
from pals_core.control.qos import QoSPolicy
from pals_core.errors import ConfigurationError
from pals_core.experiments.scenarios import (
    DEVICE_VARIATION_FRAC,
    NOISE_FRAC,
    PROFILE_SEED_OFFSET,
    Matrix,
    NodeConfig,
)
from pals_core.experiments.simnode import build_node

if TYPE_CHECKING:
    from pals_core.control.pals import PalsConfig


def profile_path(output_dir: Path, node: NodeConfig) -> Path:
    return output_dir / "profiles" / f"{node.key}.json"


def ensure_profile(node: NodeConfig, matrix: Matrix, output_dir: Path) -> Path:
    """Profile ``node``'s type on a separate simulated device unless a cached profile exists."""
    from pals_core.model import ProfileMetadata, run_profile_sweep

    path = profile_path(output_dir, node)
    if path.exists():
        return path
    handle = build_node(
        node,
        load_frac=1.0,
        seed=PROFILE_SEED_OFFSET,
        device_variation_frac=DEVICE_VARIATION_FRAC,
        noise_frac=NOISE_FRAC,
        saturating=True,
    )
    gpu = handle.gpus[0]
    limits = gpu.power_limit_constraints()
    caps_w = sorted({max(limits.min_w, f * limits.max_w) for f in matrix.profile_caps_frac})
    profile = run_profile_sweep(
        handle.gpus,
        handle.engine,
        handle.clock,
        caps_w=caps_w,
        batches=list(matrix.profile_batches),
        warmup_s=matrix.profile_warmup_s,
        window_s=matrix.profile_window_s,
        metadata=ProfileMetadata(
            gpu_name=gpu.name,
            num_gpus=node.num_gpus,
            model=node.model,
            tensor_parallel=node.num_gpus,
            engine="vllm-sim",
            notes=f"simulated device, seed {PROFILE_SEED_OFFSET}, saturating load",
        ),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    profile.save(tmp)
    tmp.replace(path)
    return path


def build_pals(
    path: Path, *, num_gpus: int, itl_slo_s: float, overrides: Mapping[str, Any] | None = None
) -> Policy:
    """The controller on a model fitted to the profile at ``path``, with the default
    :class:`~pals_core.control.pals.PalsConfig` or that config with ``overrides`` applied."""
    from pals_core.control.pals import PalsController
    from pals_core.model import PerformanceModel, Profile

    config = pals_config(overrides or {})
    model = PerformanceModel.fit(Profile.load(path))
    controller: Policy = PalsController(
        model, config, num_gpus=num_gpus, qos=QoSPolicy(itl_p99_slo_s=itl_slo_s)
    )
    return controller


def pals_config(overrides: Mapping[str, Any]) -> PalsConfig:
    """``PalsConfig()`` with ``overrides`` (field -> value); an unknown field is refused, naming
    the fields allowed."""
    from pals_core.control.pals import PalsConfig

    names = {f.name for f in fields(PalsConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigurationError(
            f"unknown PalsConfig field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}"
        )
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()
    }
    return replace(PalsConfig(), **values)
