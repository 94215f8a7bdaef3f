"""Fit each GPU type's DVFS constants on that type's own evidence (offline; ``pals sim fit``).

* A100-SXM: the Emerald AI cap sweep (Llama-8B inference, 100-400 W) fixes ``v_floor``, ``f_v``,
  ``f_knee``, the A100 idle draw (between the two A100-SXM4-80GB readings of gpu_limits.csv) and
  the A100 deployment's three power constants.
* H100-SXM: the MLPerf MaxQ/MaxP throughput ratios (H100 at 350 and 450 W, and the H200, which
  is the same die, at 500 W) and the power-capped points of the ML.ENERGY Llama-8B sweep (batch
  >= 128, where the 700 W limit binds) fix ``v_floor``, ``f_v`` and ``f_knee``.

Every objective is the seed mean over the calibration seeds. The pessimistic variant is fitted on
the same evidence with ``v_floor`` and ``f_knee`` held :data:`PESSIMISTIC_SHIFT` above the nominal
fit and ``f_v`` refitted: both variants reproduce the measurements as well as they can; they
differ where nothing was measured (H100 below 350 W, decode under deep caps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from pals_core.sim.calibration import (
    CALIBRATION_SEEDS,
    BatchPoint,
    CapPoint,
    compare_caps,
    simulate_batch_point,
)
from pals_core.sim.calibration_mlperf import MlperfPair, compare_mlperf
from pals_core.sim.dvfs import DVFS
from pals_core.sim.hardware import gpu_spec
from pals_core.sim.models import DeploymentFit

Log = Callable[[str], None]

DVFS_BOUNDS: dict[str, tuple[float, float]] = {
    "v_floor": (0.5, 0.9),
    "f_v": (0.3, 0.85),
    "f_knee": (0.15, 0.85),
}
"""Plausible ranges: a voltage floor of 50-90 % of the top voltage, reached at 30-85 % of the top
clock; a memory-path knee anywhere from deep (15 %) to shallow (85 %)."""
A100_IDLE_BOUNDS_W = (58.78, 85.0)
"""The lowest and highest A100-SXM4-80GB idle readings in gpu_limits.csv."""
PESSIMISTIC_SHIFT = {"v_floor": 0.05, "f_knee": 0.15}
"""The pessimistic variant holds the voltage floor 0.05 higher (less energy saved per clock step
wherever the floor binds: deep caps) and the memory knee 0.15 higher (decode slows sooner), and
refits the voltage-floor clock ``f_v`` so the measured caps are still reproduced."""
_PESSIMISTIC_FREE = ["f_v"]


def batch_residuals(
    points: Sequence[BatchPoint], seeds: Sequence[int], **overrides: Any
) -> list[float]:
    """Relative errors of the seed-mean throughput, power and median ITL of every point."""
    out = []
    for p in points:
        runs = [simulate_batch_point(p, seed, **overrides) for seed in seeds]
        n = len(runs)
        out += [
            sum(s.throughput_tok_s for s in runs) / n / p.throughput_tok_s - 1,
            sum(s.power_w_per_gpu for s in runs) / n / p.power_w_per_gpu - 1,
            sum(s.itl_median_s for s in runs) / n * 1e3 / p.itl_median_ms - 1,
        ]
    return out


def _solve(
    names: list[str],
    bounds: dict[str, tuple[float, float]],
    start: dict[str, float],
    residuals: Callable[[dict[str, float]], list[float]],
    max_nfev: int,
) -> tuple[dict[str, float], float]:
    lo = np.array([bounds[n][0] for n in names])
    hi = np.array([bounds[n][1] for n in names])
    x0 = np.clip(np.array([start[n] for n in names]), lo + 1e-4, hi - 1e-4)

    def fun(x: np.ndarray) -> np.ndarray:
        return np.array(residuals(dict(zip(names, x.tolist(), strict=True))))

    res = least_squares(fun, x0, bounds=(lo, hi), diff_step=0.02, max_nfev=max_nfev)
    return dict(zip(names, res.x.tolist(), strict=True)), float(np.max(np.abs(res.fun)))


def fit_a100(
    points: list[CapPoint],
    fit: DeploymentFit,
    dvfs: DVFS,
    log: Log,
    shift: dict[str, float] | None = None,
    seeds: Sequence[int] = CALIBRATION_SEEDS,
    max_nfev: int = 60,
    idle_w: float | None = None,
) -> tuple[DeploymentFit, DVFS, float]:
    """A100 DVFS constants, idle draw and Llama-8B power constants on the Emerald cap sweep.

    With ``shift`` (the pessimistic variant) ``v_floor`` and ``f_knee`` are held at the given
    values and only ``f_v`` is fitted; the deployment constants and idle stay as given."""
    spec = gpu_spec("A100-SXM")
    bounds = {**DVFS_BOUNDS, "idle_w": A100_IDLE_BOUNDS_W}
    bounds |= {"static_w": (A100_IDLE_BOUNDS_W[0], 400.0), "mem_w": (1.0, 800.0)}
    bounds |= {"comp_w": (1.0, 2000.0)}
    idle0_w = spec.idle_w if idle_w is None else idle_w
    start = {**dataclasses.asdict(dvfs), **dataclasses.asdict(fit), "idle_w": idle0_w}
    names = _PESSIMISTIC_FREE if shift else [*DVFS_BOUNDS, "idle_w", "static_w", "mem_w", "comp_w"]
    fixed = dict(shift or {})

    def build(v: dict[str, float]) -> tuple[DeploymentFit, DVFS, float]:
        v = {**start, **v, **fixed}
        new_fit = dataclasses.replace(
            fit, static_w=max(v["static_w"], v["idle_w"]), mem_w=v["mem_w"], comp_w=v["comp_w"]
        )
        new_dvfs = dataclasses.replace(dvfs, v_floor=v["v_floor"], f_v=v["f_v"], f_knee=v["f_knee"])
        return new_fit, new_dvfs, v["idle_w"]

    def residuals(v: dict[str, float]) -> list[float]:
        f, d, idle = build(v)
        sp = dataclasses.replace(spec, idle_w=idle)
        return [c.rel_error for c in compare_caps(points, seeds, fit=f, spec=sp, dvfs=d)]

    log(f"fitting A100-SXM DVFS on {len(points)} caps ({'pessimistic' if shift else 'nominal'})")
    best, worst = _solve(names, bounds, start, residuals, max_nfev)
    new_fit, new_dvfs, idle = build(best)
    log(f"  max |seed-mean error| {worst:.3f}: {new_dvfs} idle {idle:.1f} W {new_fit}")
    return new_fit, new_dvfs, idle


def fit_h100(
    pairs: list[MlperfPair],
    capped_points: list[BatchPoint],
    dvfs: DVFS,
    log: Log,
    shift: dict[str, float] | None = None,
    seeds: Sequence[int] = CALIBRATION_SEEDS,
    max_nfev: int = 40,
) -> DVFS:
    """H100 DVFS constants on the MLPerf ratios and the power-capped Llama-8B batch points."""
    names = _PESSIMISTIC_FREE if shift else list(DVFS_BOUNDS)
    start = dataclasses.asdict(dvfs)

    def build(v: dict[str, float]) -> DVFS:
        return dataclasses.replace(dvfs, **{**v, **(shift or {})})

    def residuals(v: dict[str, float]) -> list[float]:
        d = build(v)
        out = [compare_mlperf(p, seeds, dvfs=d).rel_error for p in pairs]
        return out + batch_residuals(capped_points, seeds, dvfs=d)

    log(f"fitting H100-SXM DVFS on {len(pairs)} MLPerf ratios + {len(capped_points)} capped points")
    best, worst = _solve(names, DVFS_BOUNDS, start, residuals, max_nfev)
    result = build(best)
    log(f"  max |seed-mean error| {worst:.3f}: {result}")
    return result


def pessimistic_shift(nominal: DVFS) -> dict[str, float]:
    """The constants the pessimistic variant holds fixed: ``v_floor``, ``f_knee`` moved up."""
    return {
        name: min(DVFS_BOUNDS[name][1], getattr(nominal, name) + step)
        for name, step in PESSIMISTIC_SHIFT.items()
    }
