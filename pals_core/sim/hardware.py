"""GPU datasheet facts and the power sensor of each GPU type.

Power-limit ranges and idle draw come from ``gpu_limits.csv`` of the calibration data (nvidia-smi
output); bandwidth, peak FLOPs and clock ranges from the vendor datasheets; the power sensor from
NVML's documentation. The DVFS constants (per GPU type, fitted on that type's own evidence) are
in :mod:`pals_core.sim.dvfs`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pals_core.errors import UnknownNameError
from pals_core.sim import fitted_constants as fc


@dataclass(frozen=True, slots=True)
class GPUSpec:
    """One GPU type."""

    name: str
    product_name: str
    min_cap_w: float
    max_cap_w: float
    default_cap_w: float
    idle_w: float
    """Board draw with nothing running (P0), median of nvidia-smi readings in gpu_limits.csv."""
    hbm_bandwidth_bytes_s: float
    peak_bf16_flops: float
    peak_fp8_flops: float
    memory_bytes: int
    max_sm_clock_mhz: float
    min_sm_clock_mhz: float
    power_window_s: float
    """NVML's power reading averages the samples of this window (H100: 1 s; A100 (GA100):
    0, the latest sample only, NVML's "instantaneous" power)."""
    cap_target_frac: float
    """The power controller holds average draw at this fraction of the limit when it binds
    (H100 batch sweep: 685-690 W drawn at a 700 W limit)."""

    @property
    def min_clock_frac(self) -> float:
        return self.min_sm_clock_mhz / self.max_sm_clock_mhz


_GIB = 1024**3

GPU_SPECS: dict[str, GPUSpec] = {
    "H100-SXM": GPUSpec(
        name="H100-SXM",
        product_name="NVIDIA H100 80GB HBM3",
        min_cap_w=200.0,
        max_cap_w=700.0,
        default_cap_w=700.0,
        idle_w=85.375,
        hbm_bandwidth_bytes_s=3.35e12,
        peak_bf16_flops=989e12,
        peak_fp8_flops=1979e12,
        memory_bytes=80 * _GIB,
        max_sm_clock_mhz=1980.0,
        min_sm_clock_mhz=345.0,
        power_window_s=1.0,
        cap_target_frac=fc.CAP_TARGET_FRAC,
    ),
    "A100-SXM": GPUSpec(
        name="A100-SXM",
        product_name="NVIDIA A100-SXM4-80GB",
        min_cap_w=100.0,
        max_cap_w=400.0,
        default_cap_w=400.0,
        idle_w=fc.A100_IDLE_W,
        hbm_bandwidth_bytes_s=2.039e12,
        peak_bf16_flops=312e12,
        peak_fp8_flops=312e12,  # no FP8 tensor cores: FP8 weights run at BF16 rate
        memory_bytes=80 * _GIB,
        max_sm_clock_mhz=1410.0,
        min_sm_clock_mhz=210.0,
        power_window_s=0.0,
        cap_target_frac=fc.CAP_TARGET_FRAC,
    ),
}

GPU_NAMES: tuple[str, ...] = tuple(GPU_SPECS)


def gpu_spec(name: str) -> GPUSpec:
    """The spec of GPU ``name``; an :class:`UnknownNameError` lists the known names."""
    try:
        return GPU_SPECS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown gpu {name!r}; known GPUs: {', '.join(GPU_NAMES)}"
        ) from None
