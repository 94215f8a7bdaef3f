"""A simulated serving node: N GPUs and one engine over them, on a (possibly shared) SimClock."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pals_core.device.gpu import GPUGroup
from pals_core.engine.base import DEFAULT_MAX_NUM_SEQS
from pals_core.errors import ConfigurationError
from pals_core.sim import fitted_constants as fc
from pals_core.sim.clock import SimClock
from pals_core.sim.dvfs import DEFAULT_PHYSICS, DVFS, check_physics, dvfs_params
from pals_core.sim.engine import SimEngine
from pals_core.sim.gpu import SimGPU
from pals_core.sim.hardware import GPUSpec, gpu_spec
from pals_core.sim.lengths import chat_lengths
from pals_core.sim.models import DeploymentFit, ModelProfile, model_profile
from pals_core.sim.physics import PowerCoefficients, StepCoefficients
from pals_core.sim.workload import PoissonWorkload, SaturatingWorkload, Workload

DEFAULT_BATCH_LIMIT = DEFAULT_MAX_NUM_SEQS
_VARIATION_CLIP_SIGMAS = 2.5


class SimNode:
    """GPUs (``gpus``: a :class:`GPUGroup` of :class:`SimGPU`), an engine and a clock."""

    def __init__(
        self,
        model: ModelProfile,
        spec: GPUSpec,
        num_gpus: int,
        fit: DeploymentFit,
        workload: Workload,
        clock: SimClock,
        seed: int,
        device_variation_frac: float,
        noise_frac: float,
        batch_limit: int,
        cap_settle_s: float,
        max_num_batched_tokens: int,
        physics: str = DEFAULT_PHYSICS,
        dvfs: DVFS | None = None,
        prompt_mean_tok: float = fc.CHAT_PROMPT_MEAN_TOK,
    ) -> None:
        if not 0 <= device_variation_frac < 0.3:
            raise ConfigurationError(
                f"device_variation_frac must be within [0, 0.3), got {device_variation_frac}"
            )
        self.model = model
        self.gpu_spec = spec
        self.num_gpus = num_gpus
        self.fit = fit
        self.seed = seed
        self.clock = clock
        self.workload = workload
        self.physics = physics
        if dvfs is None:
            dvfs = dvfs_params(spec.name, physics)
        self.dvfs = dvfs
        self.prompt_mean_tok = prompt_mean_tok
        self._build_args = (device_variation_frac, noise_frac, cap_settle_s, max_num_batched_tokens)
        root = np.random.SeedSequence(seed)
        wl_seed, var_seed, noise_seed = root.spawn(3)
        sims = _build_gpus(
            spec,
            fit,
            dvfs,
            num_gpus,
            clock,
            np.random.default_rng(var_seed),
            int(np.random.default_rng(noise_seed).integers(2**31)),
            self._build_args,
        )
        self._sim_gpus = sims
        self.gpus = GPUGroup(sims)
        workload.bind(
            np.random.default_rng(wl_seed),
            clock,
            chat_lengths(model.chat_output_mean_tok, prompt_mean_tok, model.chat_output_sigma),
        )
        self.engine = SimEngine(
            sims,
            StepCoefficients.build(model, spec, num_gpus, fit),
            workload,
            kv_capacity_tokens=fit.kv_capacity_tokens,
            batch_limit=batch_limit,
            max_num_batched_tokens=max_num_batched_tokens,
            start_s=clock.now_s(),
            lock=clock.lock,
        )
        weights_per_gpu = int(model.weight_bytes / num_gpus)
        kv_bytes = model.kv_bytes_per_token / num_gpus
        engine = self.engine
        for gpu in sims:
            gpu.memory_used_fn = lambda: weights_per_gpu + int(kv_bytes * engine.kv_used_tokens)
        self._max_tput: float | None = None
        clock.attach(self)

    def advance_to(self, t_s: float) -> None:
        self.engine.advance_to(t_s)

    def exact_energy_j(self) -> float:
        """Energy drawn by all GPUs so far, exactly (simulator ground truth; a controller reads
        the NVML-granular ``gpus.get_energy_j()`` instead)."""
        return sum(gpu.exact_energy_j() for gpu in self._sim_gpus)

    def max_throughput_tok_s(self) -> float:
        """Saturated output tokens/s at maximum caps and the default batch (256), measured on a
        private copy of this node (same seed and devices). For scenario setup only."""
        if self._max_tput is None:
            variation, _noise, settle, max_batched = self._build_args
            twin = SimNode(
                self.model,
                self.gpu_spec,
                self.num_gpus,
                self.fit,
                SaturatingWorkload(),
                SimClock(),
                self.seed,
                variation,
                0.0,
                DEFAULT_BATCH_LIMIT,
                settle,
                max_batched,
                self.physics,
                self.dvfs,
                self.prompt_mean_tok,
            )
            for i, gpu in enumerate(twin.gpus):
                twin.gpus.set_power_limit_w(i, gpu.power_limit_constraints().max_w)
            self._max_tput = measure_saturated(twin).throughput_tok_s
        return self._max_tput


@dataclass(frozen=True, slots=True)
class SteadyState:
    """Figures of a saturated run's measurement window."""

    throughput_tok_s: float
    power_w_per_gpu: float
    itl_median_s: float
    itl_p99_s: float
    avg_batch: float
    window_s: float


def measure_saturated(
    node: SimNode,
    warmup_turnovers: float = 1.5,
    window_turnovers: float = 6.0,
    min_window_requests: float = 600.0,
) -> SteadyState:
    """Run ``node`` (saturating workload) to steady state and measure a window.

    Warm-up and window are counted in batch turnovers (batch x mean output tokens generated),
    so every batch size is measured over the same number of request lifetimes.
    """
    engine = node.engine
    clock = node.clock
    out_mean = node.model.chat_output_mean_tok
    tokens_per_turnover = max(1.0, engine.get_batch_limit() * out_mean)
    _run_tokens(node, warmup_turnovers * tokens_per_turnover)
    m0, s0 = engine.metrics(), engine.stats()
    e0 = node.exact_energy_j()
    engine.start_step_log()
    _run_tokens(node, max(window_turnovers * tokens_per_turnover, min_window_requests * out_mean))
    log = engine.take_step_log()
    m1, s1 = engine.metrics(), engine.stats()
    e1 = node.exact_energy_j()
    window_s = clock.now_s() - s0.time_s
    durations = np.array([d for d, _ in log])
    weights = np.array([n for _, n in log], dtype=float)
    return SteadyState(
        throughput_tok_s=(m1.generation_tokens_total - m0.generation_tokens_total) / window_s,
        power_w_per_gpu=float(e1 - e0) / window_s / node.num_gpus,
        itl_median_s=_weighted_quantile(durations, weights, 0.5),
        itl_p99_s=_weighted_quantile(durations, weights, 0.99),
        avg_batch=(s1.running_seq_s - s0.running_seq_s) / window_s,
        window_s=window_s,
    )


def _run_tokens(node: SimNode, tokens: float) -> None:
    engine = node.engine
    start = engine.metrics().generation_tokens_total
    step_s = 0.5
    while engine.metrics().generation_tokens_total - start < tokens:
        node.clock.sleep(step_s)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    if values.size == 0:
        return math.nan
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, q * cum[-1])])


def build_sim_node(
    model: str = "llama-3.1-8b",
    gpu: str = "H100-SXM",
    num_gpus: int = 1,
    workload: Workload | None = None,
    seed: int = 0,
    device_variation_frac: float = 0.0,
    noise_frac: float = 0.0,
    clock: SimClock | None = None,
    batch_limit: int = DEFAULT_BATCH_LIMIT,
    cap_settle_s: float = 0.05,
    max_num_batched_tokens: int = 8192,
    fit: DeploymentFit | None = None,
    spec: GPUSpec | None = None,
    physics: str = DEFAULT_PHYSICS,
    dvfs: DVFS | None = None,
    prompt_mean_tok: float | None = None,
) -> SimNode:
    """Build a simulated node. ``workload`` defaults to none (only submitted requests).

    ``physics`` names the DVFS parameter set (:data:`PHYSICS_VARIANTS`: "nominal" or
    "pessimistic"). ``fit``, ``spec`` and ``dvfs`` override the catalog constants (the fitting
    script and what-if studies use them); ``prompt_mean_tok`` the workload's mean prompt length
    (default: lm-arena-chat's, ``CHAT_PROMPT_MEAN_TOK``). Unknown names, unsupported GPU counts
    and out-of-range values are refused.
    """
    check_physics(physics)
    profile = model_profile(model)
    gpu_type = spec if spec is not None else gpu_spec(gpu)
    if not (isinstance(num_gpus, int) and num_gpus >= 1):
        raise ConfigurationError(f"num_gpus must be an integer >= 1, got {num_gpus!r}")
    deployment = fit if fit is not None else profile.deployment(gpu_type.name, num_gpus)
    return SimNode(
        profile,
        gpu_type,
        num_gpus,
        deployment,
        workload if workload is not None else PoissonWorkload(0.0),
        clock if clock is not None else SimClock(),
        seed,
        device_variation_frac,
        noise_frac,
        batch_limit,
        cap_settle_s,
        max_num_batched_tokens,
        physics,
        dvfs,
        fc.CHAT_PROMPT_MEAN_TOK if prompt_mean_tok is None else prompt_mean_tok,
    )


def _build_gpus(
    spec: GPUSpec,
    fit: DeploymentFit,
    dvfs: DVFS,
    num_gpus: int,
    clock: SimClock,
    var_rng: np.random.Generator,
    noise_base: int,
    build_args: tuple[float, float, float, int],
) -> list[SimGPU]:
    """The node's GPUs, each with its own power and speed factors drawn from ``var_rng``."""
    device_variation_frac, noise_frac, cap_settle_s, _ = build_args
    sims = []
    for i in range(num_gpus):
        draws = np.clip(var_rng.standard_normal(2), -_VARIATION_CLIP_SIGMAS, _VARIATION_CLIP_SIGMAS)
        pf, sf = (1.0 + device_variation_frac * draws).tolist()
        power = PowerCoefficients.build(
            static_w=fit.static_w * pf,
            mem_w=fit.mem_w * pf,
            comp_w=fit.comp_w * pf,
            idle_w=spec.idle_w * pf,
            hbm_streaming_w=hbm_streaming_w(spec, fit, dvfs) * pf,
            dvfs=dvfs,
            min_clock_frac=spec.min_clock_frac,
        )
        sims.append(
            SimGPU(
                i,
                spec,
                clock,
                power,
                speed_factor=sf,
                noise_frac=noise_frac,
                noise_seed=noise_base + i,
                cap_settle_s=cap_settle_s,
            )
        )
    return sims


def hbm_streaming_w(spec: GPUSpec, fit: DeploymentFit, dvfs: DVFS) -> float:
    """Memory-subsystem draw of one GPU streaming at the deployment's full-clock bandwidth."""
    return dvfs.hbm_j_per_byte * spec.hbm_bandwidth_bytes_s * fit.eff_bandwidth
