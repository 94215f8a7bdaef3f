"""The clock-voltage-power (DVFS) model of one GPU type, and the named physics variants.

A GPU's SM clock ``f`` (a fraction of the maximum clock) sets three things:

* **Voltage.** ``v(f) = v_floor + (1 - v_floor) * (f - f_v) / (1 - f_v)`` above the
  voltage-floor clock ``f_v`` and ``v_floor`` below it (the voltage regulator cannot go lower;
  the clock still can). Voltages are fractions of the voltage at maximum clock.
* **Dynamic power of clocked logic** ``~ C v(f)**2 f``: ``clock_power_factor(f) = v(f)**2 f``
  (1 at full clock). Above ``f_v`` it falls about with the cube of the clock; below ``f_v`` only
  linearly, so deep caps buy little energy per unit of work.
* **Achievable memory bandwidth.** HBM runs on its own clock, but the loads are issued by the SMs
  and travel the L2/crossbar path, which deliver a fixed number of bytes per SM clock. At full
  clock that path has ``1 / f_knee`` headroom over what HBM delivers; below the knee clock
  ``f_knee`` it, not HBM, is the bottleneck, and memory-bound time grows as ``f_knee / f``.

``hbm_j_per_byte`` is the energy the memory subsystem (HBM and its PHY) spends per byte moved: it
does not depend on the SM clock. Constants per GPU type and variant: :data:`PHYSICS_VARIANTS`;
evidence for each in docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from pals_core.errors import UnknownNameError
from pals_core.sim import fitted_constants as fc

PHYSICS_VARIANTS: tuple[str, ...] = ("nominal", "pessimistic")
DEFAULT_PHYSICS = "nominal"

# Memory-subsystem energy per byte moved (HBM core + PHY), literature values, not fitted:
# HBM2/2e about 3.9 pJ/bit (O'Connor et al., MICRO 2017), HBM3 about 3.5 pJ/bit.
_PJ_PER_BIT_TO_J_PER_BYTE = 8e-12
HBM_J_PER_BYTE = {
    "H100-SXM": 3.5 * _PJ_PER_BIT_TO_J_PER_BYTE,
    "A100-SXM": 3.9 * _PJ_PER_BIT_TO_J_PER_BYTE,
}


class UnknownPhysicsError(UnknownNameError):
    """A physics variant name other than those in :data:`PHYSICS_VARIANTS`."""


@dataclass(frozen=True, slots=True)
class DVFS:
    """DVFS constants of one GPU type under one physics variant."""

    v_floor: float
    """Voltage at and below ``f_v``, as a fraction of the voltage at maximum clock."""
    f_v: float
    """Clock fraction below which the voltage stays at ``v_floor``."""
    f_knee: float
    """Clock fraction below which achievable memory bandwidth falls in proportion to clock."""
    hbm_j_per_byte: float
    """Memory-subsystem energy per byte moved (independent of the SM clock)."""

    def voltage_frac(self, f: float) -> float:
        if f <= self.f_v:
            return self.v_floor
        return self.v_floor + (1.0 - self.v_floor) * (f - self.f_v) / (1.0 - self.f_v)

    def clock_power_factor(self, f: float) -> float:
        """``v(f)**2 f``: dynamic power of clocked logic relative to full clock."""
        v = self.voltage_frac(f)
        return v * v * f

    def memory_slowdown(self, f: float) -> float:
        """Memory-bound time at clock ``f`` relative to full clock (1 above the knee)."""
        return self.f_knee / f if f < self.f_knee else 1.0


def check_physics(physics: str) -> str:
    """``physics`` if it names a variant; an :class:`UnknownPhysicsError` lists them if not."""
    if physics not in PHYSICS_VARIANTS:
        raise UnknownPhysicsError(
            f"unknown physics {physics!r}; allowed values: {', '.join(PHYSICS_VARIANTS)}"
        )
    return physics


# GPU types that share another's die (and so its DVFS constants and memory technology class)
SAME_DIE = {"H200-SXM": "H100-SXM"}


def dvfs_params(gpu: str, physics: str = DEFAULT_PHYSICS) -> DVFS:
    """The DVFS constants of GPU type ``gpu`` under physics variant ``physics``."""
    check_physics(physics)
    gpu = SAME_DIE.get(gpu, gpu)
    try:
        v_floor, f_v, f_knee = fc.DVFS[(physics, gpu)]
    except KeyError:
        known = sorted({g for _, g in fc.DVFS})
        raise UnknownNameError(
            f"no DVFS constants for gpu {gpu!r}; known: {', '.join(known)}"
        ) from None
    return DVFS(v_floor, f_v, f_knee, HBM_J_PER_BYTE[gpu])
