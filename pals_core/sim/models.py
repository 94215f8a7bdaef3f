"""Model profiles: architecture facts (from each model's published config) plus the fitted
per-deployment constants (from :mod:`pals_core.sim.fitted_constants`).

Nothing here reads the calibration CSVs: the fit runs offline and its result is committed code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pals_core.errors import ConfigurationError, UnknownNameError
from pals_core.sim import fitted_constants as fc
from pals_core.sim.hardware import gpu_spec


@dataclass(frozen=True, slots=True)
class DeploymentFit:
    """Fitted constants of one model on ``num_gpus`` GPUs of one type."""

    eff_bandwidth: float
    """Fraction of peak HBM bandwidth achieved by weight and KV reads."""
    eff_flops: float
    """Fraction of peak tensor FLOPs achieved by the linear layers."""
    overhead_s: float
    """Fixed time per engine step (scheduling, kernel launches, sampling, synchronisation)."""
    comm_s_per_token: float
    """Collective time per token in the step (TP all-reduce or EP all-to-all); 0 on one GPU."""
    static_w: float
    """Per-GPU draw while serving with no memory or compute activity."""
    mem_w: float
    """Per-GPU extra draw with HBM busy 100% of the time."""
    comp_w: float
    """Per-GPU extra draw with tensor cores busy 100% of the time at full SM clock."""
    kv_capacity_tokens: int
    """KV-cache capacity of the whole engine, in tokens."""
    expert_token_frac: float = 1.0
    """MoE only: tokens of a step route like ``expert_token_frac x tokens`` independent draws
    when counting the distinct experts read (tokens of similar context pick similar experts;
    1.0 = independent uniform routing)."""

    @classmethod
    def from_tuple(cls, values: tuple[float, ...]) -> DeploymentFit:
        eb, ef, ov, comm, st, mem, comp, kv, *rest = values
        return cls(eb, ef, ov, comm, st, mem, comp, int(kv), *rest)

    def as_tuple(self) -> tuple[float, ...]:
        return (
            self.eff_bandwidth,
            self.eff_flops,
            self.overhead_s,
            self.comm_s_per_token,
            self.static_w,
            self.mem_w,
            self.comp_w,
            float(self.kv_capacity_tokens),
            self.expert_token_frac,
        )


@dataclass(frozen=True, slots=True)
class ModelProfile:
    name: str
    hf_id: str
    is_moe: bool
    total_params: float
    active_params: float
    """Parameters touched per token (MoE: shared + the top-k experts); sets FLOPs per token."""
    expert_params: float
    """Parameters in routed experts (0 for dense models)."""
    num_experts: int
    experts_per_token: int
    num_layers: int
    kv_bytes_per_token: int
    """2 (K and V) x layers x KV heads x head dim x 2 bytes (BF16 KV cache)."""
    weight_bytes_per_param: float
    fp8_compute: bool
    chat_output_mean_tok: float
    """Mean output length on lm-arena-chat (ML.ENERGY ``avg_output_len``): model verbosity."""
    default_itl_p99_slo_s: float
    """The ITL p99 SLO the experiments use for this model."""
    chat_output_sigma: float = 0.8
    """Log-space spread of output lengths (lognormal). Qwen3-30B-A3B: 0.55, because ML.ENERGY
    holds 1018.8 sequences on average at max_num_seqs=1024 on 2 GPUs, which the KV cache left
    after weights and activations (865k tokens) allows only if running contexts average <= 849
    tokens, i.e. a spread <= 0.59 with its 920-token mean output."""
    deployments: dict[tuple[str, int], DeploymentFit] = field(default_factory=dict)

    @property
    def weight_bytes(self) -> float:
        return self.total_params * self.weight_bytes_per_param

    @property
    def dense_weight_bytes(self) -> float:
        return (self.total_params - self.expert_params) * self.weight_bytes_per_param

    @property
    def expert_weight_bytes(self) -> float:
        return self.expert_params * self.weight_bytes_per_param

    def supported(self) -> list[tuple[str, int]]:
        return sorted(self.deployments)

    def deployment(self, gpu: str, num_gpus: int) -> DeploymentFit:
        gpu_spec(gpu)  # unknown GPU names get the list of known ones
        try:
            return self.deployments[(gpu, num_gpus)]
        except KeyError:
            options = ", ".join(f"{g} x{n}" for g, n in self.supported())
            raise ConfigurationError(
                f"model {self.name!r} is not calibrated for num_gpus={num_gpus} on {gpu}; "
                f"supported: {options}"
            ) from None


def _arch() -> dict[str, ModelProfile]:
    dense_kv = 2 * 8 * 128 * 2  # per layer: K and V, 8 KV heads, head dim 128, BF16
    return {
        "llama-3.1-8b": ModelProfile(
            name="llama-3.1-8b",
            hf_id="meta-llama/Llama-3.1-8B-Instruct",
            is_moe=False,
            total_params=8.03e9,
            active_params=8.03e9,
            expert_params=0.0,
            num_experts=0,
            experts_per_token=0,
            num_layers=32,
            kv_bytes_per_token=32 * dense_kv,
            weight_bytes_per_param=2.0,
            fp8_compute=False,
            chat_output_mean_tok=398.0,
            default_itl_p99_slo_s=0.10,
        ),
        "llama-3.1-70b": ModelProfile(
            name="llama-3.1-70b",
            hf_id="meta-llama/Llama-3.1-70B-Instruct",
            is_moe=False,
            total_params=70.6e9,
            active_params=70.6e9,
            expert_params=0.0,
            num_experts=0,
            experts_per_token=0,
            num_layers=80,
            kv_bytes_per_token=80 * dense_kv,
            weight_bytes_per_param=2.0,
            fp8_compute=False,
            chat_output_mean_tok=354.0,
            default_itl_p99_slo_s=0.25,
        ),
        "qwen3-30b-a3b": ModelProfile(
            name="qwen3-30b-a3b",
            hf_id="Qwen/Qwen3-30B-A3B-Instruct-2507",
            is_moe=True,
            total_params=30.5e9,
            active_params=3.3e9,
            expert_params=48 * 128 * 3 * 2048 * 768,
            num_experts=128,
            experts_per_token=8,
            num_layers=48,
            kv_bytes_per_token=48 * 2 * 4 * 128 * 2,
            weight_bytes_per_param=2.0,
            fp8_compute=False,
            chat_output_mean_tok=922.0,
            default_itl_p99_slo_s=0.10,
            chat_output_sigma=0.55,
        ),
        "qwen3-235b-a22b-fp8": ModelProfile(
            name="qwen3-235b-a22b-fp8",
            hf_id="Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
            is_moe=True,
            total_params=235e9,
            active_params=22e9,
            expert_params=94 * 128 * 3 * 4096 * 1536,
            num_experts=128,
            experts_per_token=8,
            num_layers=94,
            kv_bytes_per_token=94 * 2 * 4 * 128 * 2,
            weight_bytes_per_param=1.0,
            fp8_compute=True,
            chat_output_mean_tok=871.0,
            default_itl_p99_slo_s=0.20,
        ),
        "llama-4-scout": ModelProfile(
            name="llama-4-scout",
            hf_id="meta-llama/Llama-4-Scout-17B-16E-Instruct",
            is_moe=True,
            total_params=109e9,
            active_params=17e9,
            expert_params=48 * 16 * 3 * 5120 * 8192,
            num_experts=16,
            experts_per_token=1,
            num_layers=48,
            kv_bytes_per_token=48 * dense_kv,
            weight_bytes_per_param=2.0,
            fp8_compute=False,
            chat_output_mean_tok=405.0,
            default_itl_p99_slo_s=0.20,
        ),
    }


def _build() -> dict[str, ModelProfile]:
    profiles = _arch()
    for (model, gpu, n), values in fc.DEPLOYMENTS.items():
        profiles[model].deployments[(gpu, n)] = DeploymentFit.from_tuple(values)
    return profiles


_PROFILES: dict[str, ModelProfile] | None = None

MODEL_NAMES: tuple[str, ...] = (
    "llama-3.1-8b",
    "llama-3.1-70b",
    "qwen3-30b-a3b",
    "qwen3-235b-a22b-fp8",
    "llama-4-scout",
)


def model_profile(name: str) -> ModelProfile:
    """The profile of model ``name``; an :class:`UnknownNameError` lists the known names."""
    global _PROFILES
    if _PROFILES is None:
        _PROFILES = _build()
    try:
        return _PROFILES[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}"
        ) from None
