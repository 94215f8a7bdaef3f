"""Fit the simulator's constants to the calibration data (offline; ``pals sim fit``).

Per deployment (model x GPU type x GPU count) a handful of constants (see
:class:`~pals_core.sim.models.DeploymentFit`) are fitted by ``scipy.optimize.least_squares`` on
the relative errors of throughput, power per GPU and median ITL at every batch size, running the
simulator itself (common random numbers: a fixed seed) so the fit and the check agree. The KV
capacity is set first: where the data shows the KV cache limiting the batch (avg_batch_size below
batch_size) it is bisected to reproduce that average batch; elsewhere it is the physical estimate
(90% of HBM minus weights minus a 4 GiB activation reserve, over KV bytes per token).

The A100 cap sweep fixes the DVFS constants (alpha, voltage floor), shared with the H100, and the
A100 power constants of Llama-3.1-8B; its time constants are the H100 fit's (same efficiency
fractions of the datasheet peaks). The result is written as Python source to
``fitted_constants.py``: nothing reads the calibration data at run time.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from pals_core.sim import fitted_constants as fc
from pals_core.sim.calibration import (
    BatchPoint,
    CapPoint,
    calibration_dir,
    compare_caps,
    load_batch_points,
    load_cap_points,
    simulate_batch_point,
)
from pals_core.sim.hardware import GPUSpec, gpu_spec
from pals_core.sim.models import DeploymentFit, model_profile

_GIB = 1024**3
ACTIVATION_RESERVE_BYTES = 4 * _GIB
GPU_MEMORY_UTILIZATION = 0.9

# name -> (lower, upper) bounds of the fitted constants
BOUNDS: dict[str, tuple[float, float]] = {
    "eff_bandwidth": (0.15, 1.0),
    "eff_flops": (0.02, 1.0),
    "overhead_s": (1e-4, 0.08),
    "comm_s_per_token": (1e-9, 5e-4),
    "static_w": (20.0, 500.0),
    "mem_w": (1.0, 800.0),
    "comp_w": (1.0, 2000.0),
    "expert_token_frac": (0.05, 1.0),
}

Log = Callable[[str], None]


def physical_kv_capacity(model: str, gpu: str, num_gpus: int) -> int:
    prof = model_profile(model)
    spec = gpu_spec(gpu)
    free = (
        GPU_MEMORY_UTILIZATION * spec.memory_bytes * num_gpus
        - prof.weight_bytes
        - ACTIVATION_RESERVE_BYTES * num_gpus
    )
    return max(10_000, int(free / prof.kv_bytes_per_token))


def fit_kv_capacity(points: list[BatchPoint], fit: DeploymentFit, log: Log) -> int:
    """KV capacity reproducing the average batch at the largest batch size.

    Where that point is KV-limited (avg_batch_size well below batch_size) the bisected value is
    used; otherwise the cache must merely be large enough not to limit it, so the physical
    estimate is used unless it is too small for this workload (then the threshold + 10%).
    """
    first = points[0]
    physical = physical_kv_capacity(first.model, first.gpu, first.num_gpus)
    p = max(points, key=lambda q: q.batch_size)
    limited = p.avg_batch_size < 0.97 * p.batch_size
    target = p.avg_batch_size if limited else 0.995 * p.avg_batch_size
    lo, hi = math.log(physical / 8), math.log(physical * 8)
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        trial = dataclasses.replace(fit, kv_capacity_tokens=int(math.exp(mid)))
        if simulate_batch_point(p, trial).avg_batch < target:
            lo = mid
        else:
            hi = mid
    threshold = int(math.exp(0.5 * (lo + hi)))
    if limited:
        log(
            f"  kv capacity: {threshold} tokens reproduces avg batch {p.avg_batch_size:.1f} at "
            f"batch {p.batch_size} (physical estimate {physical})"
        )
        return threshold
    kv = max(physical, int(1.1 * threshold))
    log(
        f"  kv capacity: {kv} tokens (not limiting at batch {p.batch_size}: needs > "
        f"{threshold}; physical estimate {physical})"
    )
    return kv


def _free_names(num_gpus: int, is_moe: bool) -> list[str]:
    names = list(BOUNDS)
    if num_gpus == 1:
        names.remove("comm_s_per_token")
    if not is_moe:
        names.remove("expert_token_frac")
    return names


def batch_residuals(
    points: list[BatchPoint], fit: DeploymentFit, spec: GPUSpec | None
) -> list[float]:
    out = []
    for p in points:
        s = simulate_batch_point(p, fit, spec)
        out += [
            s.throughput_tok_s / p.throughput_tok_s - 1,
            s.power_w_per_gpu / p.power_w_per_gpu - 1,
            s.itl_median_s * 1e3 / p.itl_median_ms - 1,
        ]
    return out


def _quartic(z: np.ndarray) -> np.ndarray:
    """Loss rho(z) = z**2 on squared residuals z, i.e. minimise the sum of r**4: it weighs the
    worst points most, since the acceptance bar is the maximum error, not the mean."""
    return np.vstack([z**2, 2 * z, 2 * np.ones_like(z)])


def fit_deployment(
    points: list[BatchPoint], start: DeploymentFit, log: Log, max_nfev: int = 60
) -> DeploymentFit:
    first = points[0]
    log(f"fitting {first.dataset} on {len(points)} points")
    kv = fit_kv_capacity(points, start, log)
    base = dataclasses.replace(start, kv_capacity_tokens=kv)
    names = _free_names(first.num_gpus, model_profile(first.model).is_moe)
    idle_w = gpu_spec(first.gpu).idle_w  # serving never draws less than an idle GPU
    lo = np.log([idle_w if n == "static_w" else BOUNDS[n][0] for n in names])
    hi = np.log([BOUNDS[n][1] for n in names])
    z0 = np.clip(np.log([getattr(base, n) for n in names]), lo + 1e-6, hi - 1e-6)

    def make(z: np.ndarray) -> DeploymentFit:
        return dataclasses.replace(base, **dict(zip(names, np.exp(z).tolist(), strict=True)))

    def fun(z: np.ndarray) -> np.ndarray:
        return np.array(batch_residuals(points, make(z), None))

    res = least_squares(fun, z0, bounds=(lo, hi), diff_step=0.02, max_nfev=max_nfev, loss=_quartic)
    fit = make(res.x)
    worst = float(np.max(np.abs(res.fun)))
    log(f"  max |rel error| {worst:.3f} after {res.nfev} evaluations: {fit}")
    return fit


def fit_cap_sweep(
    points: list[CapPoint], start: DeploymentFit, spec: GPUSpec, log: Log, max_nfev: int = 80
) -> tuple[DeploymentFit, GPUSpec]:
    """Fit A100 power constants and the shared DVFS constants on the cap sweep."""
    log(f"fitting cap sweep (A100-SXM, Llama-3.1-8B) on {len(points)} caps")
    names = ["static_w", "mem_w", "comp_w"]
    lows = [spec.idle_w, BOUNDS["mem_w"][0], BOUNDS["comp_w"][0]]
    lo = np.array([*np.log(lows), math.log(1.5), math.log(0.05)])
    hi = np.array([*np.log([BOUNDS[n][1] for n in names]), math.log(4.0), math.log(0.9)])
    z0 = np.array(
        [
            *np.log([getattr(start, n) for n in names]),
            math.log(spec.alpha),
            math.log(spec.voltage_floor),
        ]
    )
    z0 = np.clip(z0, lo + 1e-6, hi - 1e-6)

    def make(z: np.ndarray) -> tuple[DeploymentFit, GPUSpec]:
        v = np.exp(z).tolist()
        fit = dataclasses.replace(start, static_w=v[0], mem_w=v[1], comp_w=v[2])
        return fit, dataclasses.replace(spec, alpha=v[3], voltage_floor=v[4])

    def fun(z: np.ndarray) -> np.ndarray:
        fit, sp = make(z)
        return np.array([c.rel_error for c in compare_caps(points, fit, sp)])

    res = least_squares(fun, z0, bounds=(lo, hi), diff_step=0.02, max_nfev=max_nfev)
    fit, sp = make(res.x)
    log(
        f"  max |rel error| {float(np.max(np.abs(res.fun))):.3f}: alpha={sp.alpha:.3f} "
        f"voltage_floor={sp.voltage_floor:.3f} {fit}"
    )
    return fit, sp


def run_fit(
    data_dir: Path | None = None,
    only: list[str] | None = None,
    log: Log = print,
    max_nfev: int = 60,
) -> tuple[dict[tuple[str, str, int], DeploymentFit], float, float]:
    """Fit every deployment with data (or those named in ``only``, as ``model/GPUxN``).

    Returns the deployments (unfitted ones keep their current constants), alpha and floor.
    """
    directory = calibration_dir(data_dir)
    groups: dict[str, list[BatchPoint]] = defaultdict(list)
    for p in load_batch_points(directory):
        groups[p.dataset].append(p)
    current = {k: DeploymentFit.from_tuple(v) for k, v in fc.DEPLOYMENTS.items()}
    alpha, floor = fc.DVFS_ALPHA, fc.DVFS_VOLTAGE_FLOOR
    wanted = set(only) if only else None
    key8 = ("llama-3.1-8b", "H100-SXM", 1)
    a100 = ("llama-3.1-8b", "A100-SXM", 1)
    name8 = "llama-3.1-8b/H100-SXMx1"
    fit8_wanted = wanted is None or name8 in wanted
    if fit8_wanted:
        current[key8] = fit_deployment(groups[name8], current[key8], log, max_nfev=max_nfev)
    if wanted is None or "cap-sweep" in wanted:
        h100_8b = current[key8]
        start = dataclasses.replace(
            current[a100],
            eff_bandwidth=h100_8b.eff_bandwidth,
            eff_flops=h100_8b.eff_flops,
            overhead_s=h100_8b.overhead_s,
            kv_capacity_tokens=h100_8b.kv_capacity_tokens,
        )
        fit, spec = fit_cap_sweep(load_cap_points(directory), start, gpu_spec("A100-SXM"), log)
        current[a100] = fit
        alpha, floor = spec.alpha, spec.voltage_floor
        fc.DVFS_ALPHA, fc.DVFS_VOLTAGE_FLOOR = alpha, floor
        if fit8_wanted:  # the cap binds at large batches: refine with the fitted DVFS constants
            current[key8] = fit_deployment(
                groups[name8], current[key8], log, max_nfev=max(10, max_nfev // 3)
            )
    for name, points in sorted(groups.items()):
        if name == name8 or (wanted is not None and name not in wanted):
            continue
        p0 = points[0]
        key = (p0.model, p0.gpu, p0.num_gpus)
        current[key] = fit_deployment(points, current[key], log, max_nfev=max_nfev)
    return current, alpha, floor


def render_constants(
    deployments: dict[tuple[str, str, int], DeploymentFit], alpha: float, floor: float
) -> str:
    """The source of ``fitted_constants.py``."""
    lines = [
        '"""Fitted simulator constants. GENERATED by ``pals sim fit`` (pals_core/sim/fit.py)',
        "from the calibration data; edit by re-running the fit, not by hand.",
        "",
        "DEPLOYMENTS maps (model, gpu, num_gpus) to",
        "(eff_bandwidth, eff_flops, overhead_s, comm_s_per_token, static_w, mem_w, comp_w,",
        "kv_capacity_tokens[, expert_token_frac]); see docs/simulator.md for their meaning.",
        '"""',
        "",
        f"DVFS_ALPHA = {alpha:.4g}",
        f"DVFS_VOLTAGE_FLOOR = {floor:.4g}",
        f"CAP_TARGET_FRAC = {fc.CAP_TARGET_FRAC!r}",
        f"CHAT_PROMPT_MEAN_TOK = {fc.CHAT_PROMPT_MEAN_TOK!r}",
        "",
        "# fmt: off",
        "DEPLOYMENTS: dict[tuple[str, str, int], tuple[float, ...]] = {",
    ]
    for key, fit in deployments.items():
        eb, ef, ov, comm, st, mem, comp, kv, etf = fit.as_tuple()
        values = (
            f"{eb:.4g}, {ef:.4g}, {ov:.4g}, {comm:.4g}, {st:.4g}, {mem:.4g}, {comp:.4g}, {int(kv)}"
        )
        if etf != 1.0:
            values += f", {etf:.4g}"
        model, gpu, n = key
        lines.append(f'    ("{model}", "{gpu}", {n}):')
        lines.append(f"        ({values}),")
    lines.append("}")
    lines.append("# fmt: on")
    return "\n".join(lines) + "\n"


def save_partial(
    path: Path,
    deployments: dict[tuple[str, str, int], DeploymentFit],
    names: list[str],
    alpha: float | None,
    floor: float | None,
) -> None:
    """Write the fitted deployments named in ``names`` (model/GPUxN) for a later merge."""
    import json

    keep = {f"{m}/{g}x{n}": list(f.as_tuple()) for (m, g, n), f in deployments.items()}
    chosen = {k: v for k, v in keep.items() if k in names}
    path.write_text(json.dumps({"deployments": chosen, "alpha": alpha, "floor": floor}))


def merge_partials(paths: list[Path]) -> str:
    """Combine partial fits (later files win) with the current constants into module source."""
    import json

    current = {k: DeploymentFit.from_tuple(v) for k, v in fc.DEPLOYMENTS.items()}
    alpha, floor = fc.DVFS_ALPHA, fc.DVFS_VOLTAGE_FLOOR
    for path in paths:
        data = json.loads(path.read_text())
        for name, values in data["deployments"].items():
            model, rest = name.split("/")
            gpu, n = rest.rsplit("x", 1)
            current[(model, gpu, int(n))] = DeploymentFit.from_tuple(tuple(values))
        if data.get("alpha") is not None:
            alpha, floor = data["alpha"], data["floor"]
    return render_constants(current, alpha, floor)


def write_constants(text: str, path: Path | None = None) -> Path:
    target = path or Path(fc.__file__)
    target.write_text(text)
    return target
