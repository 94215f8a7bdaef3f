"""Step-time and power physics of one engine step on one GPU (pure functions, no state).

A step processes ``n_dec`` decode tokens (one per running sequence, reading ``ctx_tokens`` of
KV cache in total) and ``n_pf`` prefill tokens. On each of the N GPUs (weights, KV heads and
experts split N ways):

    t_mem  = (weight bytes read + KV bytes read) / (HBM bandwidth * eff_bandwidth)
    t_cmp1 = 2 * active params * (n_dec + n_pf) / (peak FLOPs * eff_flops)      (at full clock)
    t(f)   = overhead + comm_per_token * tokens + t_mem + t_cmp1 / f

where f is the SM clock as a fraction of its maximum. HBM runs on its own clock, which a power
cap does not lower, so t_mem does not depend on f. For an MoE the weight bytes read are the
dense part plus the fraction of experts the step touches, 1 - (1 - k/E)**(c * tokens) per
layer, c = expert_token_frac (1 for independent uniform routing).

Power while a step runs, per GPU:

    P(f) = static + (mem_w * t_mem * (h + (1 - h) g(f)) + comp_w * g(f) * t_cmp1 / f) / t_step,
    g(f) = max(f**alpha, voltage_floor * f)

(dynamic power ~ C V^2 f with V ~ f above the knee, V fixed at its floor below; h is the HBM's
own share of the memory-phase draw, the rest being SMs issuing loads at the SM clock). ``static``
splits into the idle draw (leakage and always-on parts: ``gpu_limits.csv``) and a busy floor
``static - idle`` that the clock tree and uncore draw while kernels run; the busy floor scales
with g(f) like the rest of the clocked logic, so at full clock P(f) is unchanged and under a cap
it falls with the clock. Under a cap the clock falls to the largest f with P(f) <= cap; if even
the minimum clock draws too much, the step is stretched (clock-gated stalls, drawing idle power)
until it fits. Since every cap is above idle, drawn power always settles at or under the cap.
See docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from pals_core.sim.hardware import GPUSpec
from pals_core.sim.models import DeploymentFit, ModelProfile

_BISECT_ITERATIONS = 14


@dataclass(frozen=True, slots=True)
class StepCoefficients:
    """Per-GPU time coefficients of one deployment, precomputed once per engine."""

    fixed_s: float
    comm_s_per_token: float
    dense_weight_s: float
    expert_weight_s: float
    expert_miss: float
    """(1 - k/E) ** expert_token_frac: the chance a token leaves a given expert unread
    (1.0 = dense: unused)."""
    kv_s_per_token: float
    cmp_s_per_token: float

    @classmethod
    def build(
        cls, model: ModelProfile, gpu: GPUSpec, num_gpus: int, fit: DeploymentFit
    ) -> StepCoefficients:
        bw = gpu.hbm_bandwidth_bytes_s * fit.eff_bandwidth
        peak = gpu.peak_fp8_flops if model.fp8_compute else gpu.peak_bf16_flops
        flops = peak * fit.eff_flops
        miss = 1.0
        if model.is_moe:
            miss = (1.0 - model.experts_per_token / model.num_experts) ** fit.expert_token_frac
        return cls(
            fixed_s=fit.overhead_s,
            comm_s_per_token=fit.comm_s_per_token,
            dense_weight_s=model.dense_weight_bytes / num_gpus / bw,
            expert_weight_s=model.expert_weight_bytes / num_gpus / bw,
            expert_miss=miss,
            kv_s_per_token=model.kv_bytes_per_token / num_gpus / bw,
            cmp_s_per_token=2.0 * model.active_params / num_gpus / flops,
        )

    def work(self, n_dec: int, ctx_tokens: int, n_pf: int) -> tuple[float, float, float]:
        """(fixed time, memory time, compute time at full clock) of one step on one GPU."""
        tokens = n_dec + n_pf
        weight_s = self.dense_weight_s
        if self.expert_weight_s:
            weight_s += self.expert_weight_s * (1.0 - self.expert_miss**tokens)
        fixed_s = self.fixed_s + self.comm_s_per_token * tokens
        return fixed_s, weight_s + self.kv_s_per_token * ctx_tokens, self.cmp_s_per_token * tokens


@dataclass(frozen=True, slots=True)
class PowerCoefficients:
    """Per-GPU power constants (device variation already applied)."""

    static_w: float
    mem_w: float
    comp_w: float
    alpha: float
    voltage_floor: float
    min_clock_frac: float
    hbm_frac: float = 0.25
    """Share of the memory-phase draw taken by the HBM itself (does not scale with the SM
    clock); the rest is SMs and L2 issuing the loads, which scale with clock and voltage."""
    idle_w: float | None = None
    """Idle draw (no kernels). ``static_w - idle_w`` is the busy floor, which scales with the
    clock like other clocked logic. None: the whole of ``static_w`` is fixed (legacy)."""

    @property
    def floor_w(self) -> float:
        """The power drawn whatever the clock: the idle draw, capped at ``static_w``."""
        return self.static_w if self.idle_w is None else min(self.idle_w, self.static_w)


def clock_power_factor(f: float, pc: PowerCoefficients) -> float:
    """g(f): how clocked logic's power scales with the clock fraction (C V^2 f, V floored)."""
    g = f**pc.alpha
    floor_g = pc.voltage_floor * f
    return floor_g if floor_g > g else g


def wait_energy_j(f: float, wait_s: float, pc: PowerCoefficients) -> float:
    """Energy above the floor of a GPU that finished its share of a tensor-parallel step and
    waits ``wait_s`` for the slowest one (its clocks stay up: the busy floor at g(f))."""
    return (pc.static_w - pc.floor_w) * clock_power_factor(f, pc) * wait_s


def dynamic_energy_j(
    f: float, mem_s: float, cmp_s: float, pc: PowerCoefficients, fixed_s: float = 0.0
) -> float:
    """Energy above the clock-independent floor (``pc.floor_w``) of one step at clock ``f``:
    the busy floor over the step's duration plus the work's dynamic energy."""
    g = f**pc.alpha
    floor_g = pc.voltage_floor * f
    if floor_g > g:
        g = floor_g
    mem_e = pc.mem_w * mem_s * (pc.hbm_frac + (1.0 - pc.hbm_frac) * g)
    busy_e = (pc.static_w - pc.floor_w) * g * (fixed_s + mem_s + cmp_s / f)
    return busy_e + mem_e + pc.comp_w * cmp_s * g / f


def solve_clock(
    fixed_s: float, mem_s: float, cmp_s: float, pc: PowerCoefficients, cap_w: float
) -> tuple[float, float, float]:
    """Pick the SM clock for one step under ``cap_w``.

    Returns ``(f, duration_s, energy_j)``: the clock fraction, the step time on this GPU and
    the energy above the floor. The step's average power is ``pc.floor_w + energy / duration``.
    """
    floor_w = pc.floor_w
    budget_w = cap_w - floor_w
    t1 = fixed_s + mem_s + cmp_s
    e1 = (pc.static_w - floor_w) * t1 + (pc.mem_w * mem_s) + pc.comp_w * cmp_s
    if e1 <= budget_w * t1:
        return 1.0, t1, e1
    lo = pc.min_clock_frac
    t_lo = fixed_s + mem_s + cmp_s / lo
    e_lo = dynamic_energy_j(lo, mem_s, cmp_s, pc, fixed_s)
    if e_lo > budget_w * t_lo:
        # even the lowest clock draws too much: stall (stretch) the step until it fits
        if budget_w <= 0:
            return lo, t_lo, e_lo
        return lo, e_lo / budget_w, e_lo
    hi = 1.0
    for _ in range(_BISECT_ITERATIONS):
        mid = 0.5 * (lo + hi)
        energy = dynamic_energy_j(mid, mem_s, cmp_s, pc, fixed_s)
        if energy <= budget_w * (fixed_s + mem_s + cmp_s / mid):
            lo = mid
        else:
            hi = mid
    return lo, fixed_s + mem_s + cmp_s / lo, dynamic_energy_j(lo, mem_s, cmp_s, pc, fixed_s)
