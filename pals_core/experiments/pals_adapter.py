"""PALS in the experiments: its profile, taken once per (model, node type), and the controller.

As in reality, the profile is measured on *another* device of the same type: a simulated node
with its own seed (hence its own per-GPU variation and noise) under a saturating load, before
and apart from every scenario. It is cached as JSON under the output folder, keyed by the
simulator's fingerprint and the sweep's settings: a rerun reuses it only if nothing that made it
changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pals_core.control.policy import Policy
from pals_core.control.qos import QoSPolicy
from pals_core.errors import ConfigurationError, ProfileError
from pals_core.experiments.scenarios import (
    DEVICE_VARIATION_FRAC,
    NOISE_FRAC,
    PROFILE_SEED_OFFSET,
    Matrix,
    NodeConfig,
)
from pals_core.experiments.simnode import build_node
from pals_core.model.profile import NodeIdentity

if TYPE_CHECKING:
    from pals_core.control.pals import PalsConfig


def profile_path(output_dir: Path, node: NodeConfig, matrix: Matrix, physics: str) -> Path:
    """Where the profile of ``node`` is cached: keyed by the simulator's fingerprint under
    ``physics`` and by the sweep's settings, so a rerun never reuses a profile made by another
    simulator or another sweep."""
    from pals_core.sim import simulator_fingerprint

    sweep = repr(
        (
            matrix.profile_caps_frac,
            matrix.profile_batches,
            matrix.profile_warmup_s,
            matrix.profile_window_s,
        )
    )
    key = hashlib.sha256(f"{simulator_fingerprint(physics)}|{sweep}".encode()).hexdigest()[:12]
    return output_dir / "profiles" / f"{node.key}-{physics}-{key}.json"


def ensure_profile(
    node: NodeConfig, matrix: Matrix, output_dir: Path, physics: str = "nominal"
) -> Path:
    """Profile ``node``'s type on a separate simulated device unless a cached profile exists.
    A cached profile is checked before any run: one that cannot be read, or that describes
    another node, raises :class:`ProfileError` naming the file (delete it to profile again)."""
    from pals_core.model import ProfileMetadata, run_profile_sweep

    path = profile_path(output_dir, node, matrix, physics)
    handle = build_node(
        node,
        load_frac=1.0,
        seed=PROFILE_SEED_OFFSET,
        device_variation_frac=DEVICE_VARIATION_FRAC,
        noise_frac=NOISE_FRAC,
        saturating=True,
        physics=physics,
    )
    if path.exists():
        check_profile(path, handle.identity)
        return path
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
            notes=f"simulated device ({physics} physics), seed {PROFILE_SEED_OFFSET}, "
            "saturating load",
        ),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    profile.save(tmp)
    tmp.replace(path)
    return path


def check_profile(path: Path, node: NodeIdentity) -> None:
    """Raise :class:`ProfileError` unless the profile at ``path`` loads, fits a model and
    describes ``node`` (the message names the file and what is wrong)."""
    from pals_core.model import PerformanceModel, Profile

    try:
        profile = Profile.load(path)
        profile.check_matches(node)
        PerformanceModel.fit(profile)
    except ProfileError as err:
        raise ProfileError(
            f"cached profile {path} is unusable ({err}); delete it to profile again"
        ) from err


def build_pals(
    path: Path,
    *,
    node: NodeIdentity,
    itl_slo_s: float,
    default_batch: int | None = None,
    ttft_slo_s: float | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Policy:
    """The controller on a model fitted to the profile at ``path``, with the default
    :class:`~pals_core.control.pals.PalsConfig` or that config with ``overrides`` applied. A
    profile of another model, GPU type or GPU count is refused
    (:class:`~pals_core.errors.ProfileMismatchError`), as the runtime refuses it.
    ``default_batch``: the engine's default batch limit (vLLM's for the GPU), PALS's batch in
    its warm-up and while the target does not fit within the budget (``overrides`` win)."""
    from pals_core.control.pals import PalsController
    from pals_core.model import PerformanceModel, Profile

    config = pals_config(
        {**({} if default_batch is None else {"default_batch": default_batch}), **(overrides or {})}
    )
    profile = Profile.load(path)
    profile.check_matches(node)
    model = PerformanceModel.fit(profile)
    qos = QoSPolicy(itl_p99_slo_s=itl_slo_s, ttft_p99_slo_s=ttft_slo_s)
    controller: Policy = PalsController(model, config, num_gpus=node.num_gpus, qos=qos)
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
