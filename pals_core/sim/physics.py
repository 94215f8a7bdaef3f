"""Step-time and power physics of one engine step on one GPU (pure functions, no state).

A step processes ``n_dec`` decode tokens (one per running sequence, reading ``ctx_tokens`` of
KV cache in total) and ``n_pf`` prefill tokens. On each of the N GPUs (weights, KV heads and
experts split N ways), at full SM clock:

    t_mem1 = (weight bytes read + KV bytes read) / (HBM bandwidth * eff_bandwidth)
    t_cmp1 = 2 * active params * (n_dec + n_pf) / (peak FLOPs * eff_flops)

and at SM clock fraction f (see :mod:`pals_core.sim.dvfs` for the DVFS model):

    t(f) = overhead + comm_per_token * tokens + t_mem1 * s(f) + t_cmp1 / f,
    s(f) = max(1, f_knee / f)           (memory bandwidth falls below the knee clock)

For an MoE the weight bytes read are the dense part plus the fraction of experts the step
touches, 1 - (1 - k/E)**(c * tokens) per layer, c = expert_token_frac.

Power while a step runs, per GPU, with g(f) = v(f)**2 f (clocked logic, 1 at full clock):

    P(f) = idle + [busy * g t(f) + (mem_sm * v(f)**2 + hbm) t_mem1 + comp * v(f)**2 t_cmp1] / t(f)

``idle`` is the GPU type's idle draw (leakage and always-on parts, gpu_limits.csv); ``busy`` the
clocked logic active while kernels run (clock tree, schedulers, L2: the fitted serving floor
minus idle); ``hbm`` the memory subsystem's draw while streaming at full-clock bandwidth (energy
per byte x bytes: independent of f); ``mem_sm`` the rest of the fitted memory-phase draw (SMs,
L2 and crossbar moving the bytes: energy per byte ~ v**2, whatever the clock); ``comp`` the
tensor cores at full clock (energy per operation ~ v**2). Only the busy floor (clock tree and
logic toggling every cycle) draws in proportion to the clock itself. At f = 1
this is ``static + (mem_w t_mem1 + comp_w t_cmp1) / t``: the batch-sweep fit is unchanged by
the DVFS constants. Under a cap the clock falls to the largest f with P(f) <= cap; if even the
minimum clock draws too much, the step is stretched (clock-gated stalls, drawing idle power)
until it fits. See docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pals_core.sim.dvfs import DVFS
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
    """Per-GPU power constants (device variation already applied) and the GPU's DVFS model."""

    idle_w: float
    """Draw with no kernel running: independent of the clock."""
    busy_w: float
    """Clocked logic active while any kernel runs, at full clock (scales with g(f))."""
    mem_sm_w: float
    """SM-side draw of memory-bound phases at full clock (energy per byte ~ v(f)**2)."""
    hbm_w: float
    """Memory-subsystem draw while streaming at full-clock bandwidth (energy per byte fixed)."""
    comp_w: float
    """Tensor-core draw while computing at full clock (energy per operation ~ v(f)**2)."""
    dvfs: DVFS
    min_clock_frac: float
    static_w: float = field(init=False)
    """The serving floor at full clock (idle + busy)."""
    mem_w: float = field(init=False)
    """Memory-phase draw at full clock (memory subsystem + SM side)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "static_w", self.idle_w + self.busy_w)
        object.__setattr__(self, "mem_w", self.hbm_w + self.mem_sm_w)

    @classmethod
    def build(
        cls,
        static_w: float,
        mem_w: float,
        comp_w: float,
        idle_w: float,
        hbm_streaming_w: float,
        dvfs: DVFS,
        min_clock_frac: float,
    ) -> PowerCoefficients:
        """Split the fitted serving floor ``static_w`` into idle and busy parts, and the fitted
        memory-phase draw ``mem_w`` into the memory subsystem and the SM side."""
        hbm_w = min(hbm_streaming_w, mem_w)
        return cls(
            idle_w=min(idle_w, static_w),
            busy_w=max(0.0, static_w - idle_w),
            mem_sm_w=mem_w - hbm_w,
            hbm_w=hbm_w,
            comp_w=comp_w,
            dvfs=dvfs,
            min_clock_frac=min_clock_frac,
        )

    @property
    def floor_w(self) -> float:
        """The power drawn whatever the clock."""
        return self.idle_w


def step_time_s(f: float, fixed_s: float, mem_s: float, cmp_s: float, dvfs: DVFS) -> float:
    """Duration of a step at clock ``f`` (``mem_s``, ``cmp_s``: times at full clock)."""
    return fixed_s + mem_s * dvfs.memory_slowdown(f) + cmp_s / f


def wait_energy_j(f: float, wait_s: float, pc: PowerCoefficients) -> float:
    """Energy above the floor of a GPU that finished its share of a tensor-parallel step and
    waits ``wait_s`` for the slowest one (its clocks stay up: the busy floor at g(f))."""
    return pc.busy_w * pc.dvfs.clock_power_factor(f) * wait_s


def dynamic_energy_j(
    f: float, mem_s: float, cmp_s: float, pc: PowerCoefficients, fixed_s: float = 0.0
) -> float:
    """Energy above the clock-independent floor (``pc.floor_w``) of one step at clock ``f``."""
    dvfs = pc.dvfs
    v = dvfs.voltage_frac(f)
    g = v * v * f
    mem_t = mem_s * dvfs.memory_slowdown(f)
    busy_e = pc.busy_w * g * (fixed_s + mem_t + cmp_s / f)
    mem_e = (pc.mem_sm_w * v * v + pc.hbm_w) * mem_s
    return busy_e + mem_e + pc.comp_w * v * v * cmp_s


def solve_clock(
    fixed_s: float, mem_s: float, cmp_s: float, pc: PowerCoefficients, cap_w: float
) -> tuple[float, float, float]:
    """Pick the SM clock for one step under ``cap_w``.

    Returns ``(f, duration_s, energy_j)``: the clock fraction, the step time on this GPU and
    the energy above the floor. The step's average power is ``pc.floor_w + energy / duration``.
    """
    budget_w = cap_w - pc.idle_w
    t1 = fixed_s + mem_s + cmp_s
    e1 = pc.busy_w * t1 + pc.mem_w * mem_s + pc.comp_w * cmp_s
    if e1 <= budget_w * t1:
        return 1.0, t1, e1
    dvfs = pc.dvfs
    lo = pc.min_clock_frac
    t_lo = step_time_s(lo, fixed_s, mem_s, cmp_s, dvfs)
    e_lo = dynamic_energy_j(lo, mem_s, cmp_s, pc, fixed_s)
    if e_lo > budget_w * t_lo:
        # even the lowest clock draws too much: stall (stretch) the step until it fits
        if budget_w <= 0:
            return lo, t_lo, e_lo
        return lo, e_lo / budget_w, e_lo
    return _bisect_clock((lo, t_lo, e_lo), fixed_s, mem_s, cmp_s, pc, budget_w)


def _bisect_clock(
    lowest: tuple[float, float, float],
    fixed_s: float,
    mem_s: float,
    cmp_s: float,
    pc: PowerCoefficients,
    budget_w: float,
) -> tuple[float, float, float]:
    """The highest clock in ``[lo, 1]`` (to ``_BISECT_ITERATIONS`` halvings) whose step fits
    ``budget_w``, with its step time and energy: :func:`dynamic_energy_j` against ``budget_w`` x
    :func:`step_time_s`, with both written out (the same operations in the same order, so the
    same bits) because the simulator spends most of its time here. ``lowest`` is ``(lo, its
    step time, its energy)``, returned when no higher clock fits; the figures of a clock that
    fits are those the loop computed for it (not computed again)."""
    lo, t_lo, e_lo = lowest
    dvfs = pc.dvfs
    v_floor, f_v, f_knee = dvfs.v_floor, dvfs.f_v, dvfs.f_knee
    v_rise, f_span = 1.0 - v_floor, 1.0 - f_v
    busy_w, mem_sm_w, hbm_w, comp_w = pc.busy_w, pc.mem_sm_w, pc.hbm_w, pc.comp_w
    hi = 1.0
    for _ in range(_BISECT_ITERATIONS):
        f = 0.5 * (lo + hi)
        v = v_floor if f <= f_v else v_floor + v_rise * (f - f_v) / f_span
        t = fixed_s + mem_s * (f_knee / f if f < f_knee else 1.0) + cmp_s / f
        energy = busy_w * (v * v * f) * t + (mem_sm_w * v * v + hbm_w) * mem_s
        energy = energy + comp_w * v * v * cmp_s
        if energy <= budget_w * t:
            lo, t_lo, e_lo = f, t, energy
        else:
            hi = f
    return lo, t_lo, e_lo
