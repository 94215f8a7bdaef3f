"""Fit the simulator's constants to the calibration data (offline; ``pals sim fit``).

Per deployment (model x GPU type x GPU count) a handful of constants (see
:class:`~pals_core.sim.models.DeploymentFit`) are fitted by ``scipy.optimize.least_squares`` on
the relative errors of the seed-mean throughput, power per GPU and median ITL at every batch size
(each evaluation runs the simulator itself with every calibration seed: common random numbers,
so the objective is deterministic). The KV capacity is set first: where the data shows the KV
cache limiting the batch (avg_batch_size below batch_size) it is bisected to reproduce that
average batch; elsewhere it is the physical capacity (:mod:`pals_core.sim.memory`). It is never
above the physical capacity.

The DVFS constants of each GPU type are fitted on that type's own evidence
(:mod:`pals_core.sim.fit_dvfs`). The result is written as Python source to
``fitted_constants.py``: nothing reads the calibration data at run time.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from pals_core.sim import fitted_constants as fc
from pals_core.sim.calibration import (
    CALIBRATION_SEEDS,
    BatchPoint,
    calibration_dir,
    load_batch_points,
    load_cap_points,
    simulate_batch_point,
)
from pals_core.sim.calibration_mlperf import load_mlperf_pairs
from pals_core.sim.dvfs import DVFS, PHYSICS_VARIANTS, dvfs_params
from pals_core.sim.fit_dvfs import batch_residuals, fit_a100, fit_h100, pessimistic_shift
from pals_core.sim.hardware import gpu_spec
from pals_core.sim.memory import physical_kv_capacity_tokens
from pals_core.sim.models import DeploymentFit, model_profile

# name -> (lower, upper) bounds of the fitted constants
BOUNDS: dict[str, tuple[float, float]] = {
    "eff_bandwidth": (0.15, 1.0),
    "eff_flops": (0.02, 1.0),
    "overhead_s": (1e-4, 0.08),
    "comm_s_per_token": (1e-9, 5e-4),
    "static_w": (20.0, 650.0),
    "mem_w": (1.0, 800.0),
    "comp_w": (1.0, 2000.0),
    "expert_token_frac": (0.05, 1.0),
}

Log = Callable[[str], None]

AT_BOUND_REASONS: dict[tuple[str, str], str] = {
    ("llama-3.1-8b/H100-SXMx1", "overhead_s"): (
        "vLLM ran with async scheduling: the CPU's per-step work overlaps the GPU's, so no fixed "
        "per-step time is left on one GPU and the fit takes the bound's floor (0.1 ms)."
    ),
    ("llama-3.1-8b/A100-SXMx1", "overhead_s"): (
        "Taken from the H100 Llama-8B fit (same engine and scheduling); at the floor for the "
        "same reason: async scheduling hides the CPU's per-step work."
    ),
    ("llama-3.1-8b/A100-SXMx1", "static_w"): (
        "The cap sweep alone cannot tell a busy floor from memory-phase draw (both scale with "
        "the clock); the fit puts the whole serving floor in the fitted idle draw (busy 0 W)."
    ),
    ("llama-4-scout/H100-SXMx4", "expert_token_frac"): (
        "Uniform independent routing (1.0) is the physical upper limit of distinct experts read; "
        "this reported-only fit predates the constant and stays within the bar with it."
    ),
    ("qwen3-235b-a22b-fp8/H100-SXMx4", "expert_token_frac"): (
        "Uniform independent routing (1.0) is the physical upper limit of distinct experts read; "
        "this reported-only fit predates the constant and stays within the bar with it."
    ),
    ("qwen3-235b-a22b-fp8/H100-SXMx8", "expert_token_frac"): (
        "Uniform independent routing (1.0) is the physical upper limit of distinct experts read; "
        "this reported-only fit predates the constant and stays within the bar with it."
    ),
    ("pessimistic A100-SXM", "f_knee"): (
        "Held, not fitted: the nominal A100 knee (0.82) plus the pessimistic shift (0.15) is "
        "past the plausible range, so the variant takes the range's top (0.85)."
    ),
}
"""Fitted constants that sit at a bound of their fit, each with the reason it is physical."""


@dataclass
class FittedSet:
    """Everything ``fitted_constants.py`` holds."""

    deployments: dict[tuple[str, str, int], DeploymentFit]
    dvfs: dict[tuple[str, str], DVFS]
    a100_idle_w: float
    prompt_mean_tok: float

    @classmethod
    def current(cls) -> FittedSet:
        return cls(
            {k: DeploymentFit.from_tuple(v) for k, v in fc.DEPLOYMENTS.items()},
            {key: dvfs_params(key[1], key[0]) for key in fc.DVFS},
            fc.A100_IDLE_W,
            fc.CHAT_PROMPT_MEAN_TOK,
        )


def physical_kv_capacity(model: str, gpu: str, num_gpus: int) -> int:
    return physical_kv_capacity_tokens(model_profile(model), gpu_spec(gpu), num_gpus)


def fit_kv_capacity(
    points: list[BatchPoint], fit: DeploymentFit, log: Log, prompt_mean_tok: float
) -> int:
    """KV capacity reproducing the average batch at the largest batch size, at most physical.

    Where that point is KV-limited (avg_batch_size well below batch_size) the bisected value is
    used; otherwise the physical capacity (the cache must merely not limit the batch)."""
    first = points[0]
    physical = physical_kv_capacity(first.model, first.gpu, first.num_gpus)
    p = max(points, key=lambda q: q.batch_size)
    if p.avg_batch_size >= 0.97 * p.batch_size:
        log(f"  kv capacity: physical {physical} tokens (not limiting at batch {p.batch_size})")
        return physical
    lo, hi = math.log(physical / 8), math.log(physical)
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        trial = dataclasses.replace(fit, kv_capacity_tokens=int(math.exp(mid)))
        state = simulate_batch_point(
            p, CALIBRATION_SEEDS[0], fit=trial, prompt_mean_tok=prompt_mean_tok
        )
        if state.avg_batch < p.avg_batch_size:
            lo = mid
        else:
            hi = mid
    kv = min(physical, int(math.exp(0.5 * (lo + hi))))
    log(
        f"  kv capacity: {kv} tokens reproduces avg batch {p.avg_batch_size:.1f} at batch "
        f"{p.batch_size} (physical {physical})"
    )
    return kv


def free_names(num_gpus: int, is_moe: bool) -> list[str]:
    """The constants a deployment's fit varies (no collective on one GPU; no routing if dense)."""
    names = list(BOUNDS)
    if num_gpus == 1:
        names.remove("comm_s_per_token")
    if not is_moe:
        names.remove("expert_token_frac")
    return names


def _quartic(z: np.ndarray) -> np.ndarray:
    """Loss rho(z) = z**2 on squared residuals z, i.e. minimise the sum of r**4: it weighs the
    worst points most, since the acceptance bar is the maximum error, not the mean."""
    return np.vstack([z**2, 2 * z, 2 * np.ones_like(z)])


def fit_deployment(
    points: list[BatchPoint],
    start: DeploymentFit,
    log: Log,
    max_nfev: int = 60,
    prompt_mean_tok: float = fc.CHAT_PROMPT_MEAN_TOK,
    dvfs: DVFS | None = None,
    seeds: tuple[int, ...] = CALIBRATION_SEEDS,
    free: list[str] | None = None,
) -> DeploymentFit:
    """Fit the constants named in ``free`` (default: all of :func:`free_names`)."""
    first = points[0]
    log(f"fitting {first.dataset} on {len(points)} points x {len(seeds)} seeds")
    kv = fit_kv_capacity(points, start, log, prompt_mean_tok)
    base = dataclasses.replace(start, kv_capacity_tokens=kv)
    names = free or free_names(first.num_gpus, model_profile(first.model).is_moe)
    idle_w = gpu_spec(first.gpu).idle_w  # serving never draws less than an idle GPU
    lo = np.log([idle_w if n == "static_w" else BOUNDS[n][0] for n in names])
    hi = np.log([BOUNDS[n][1] for n in names])
    z0 = np.clip(np.log([getattr(base, n) for n in names]), lo + 1e-6, hi - 1e-6)

    def make(z: np.ndarray) -> DeploymentFit:
        return dataclasses.replace(base, **dict(zip(names, np.exp(z).tolist(), strict=True)))

    def fun(z: np.ndarray) -> np.ndarray:
        residuals = batch_residuals(
            points, seeds, fit=make(z), prompt_mean_tok=prompt_mean_tok, dvfs=dvfs
        )
        return np.array(residuals)

    res = least_squares(fun, z0, bounds=(lo, hi), diff_step=0.02, max_nfev=max_nfev, loss=_quartic)
    fit = make(res.x)
    worst = float(np.max(np.abs(res.fun)))
    log(f"  max |seed-mean error| {worst:.3f} after {res.nfev} evaluations: {fit}")
    return fit


def fit_gpu_dvfs(
    fitted: FittedSet, directory: Path, groups: dict[str, list[BatchPoint]], log: Log
) -> None:
    """Refit both GPU types' DVFS constants (both variants) in place: a coarse pass on one seed,
    then a polish on the mean over every calibration seed."""
    passes = ((CALIBRATION_SEEDS[:1], 30), (CALIBRATION_SEEDS, 4))
    a100_key = ("llama-3.1-8b", "A100-SXM", 1)
    caps = load_cap_points(directory)
    fit, dvfs = fitted.deployments[a100_key], fitted.dvfs[("nominal", "A100-SXM")]
    idle = fitted.a100_idle_w
    for seeds, nfev in passes:
        fit, dvfs, idle = fit_a100(caps, fit, dvfs, log, seeds=seeds, max_nfev=nfev, idle_w=idle)
    fitted.deployments[a100_key], fitted.dvfs[("nominal", "A100-SXM")] = fit, dvfs
    fitted.a100_idle_w = idle
    shift = pessimistic_shift(dvfs)
    pess = fitted.dvfs[("pessimistic", "A100-SXM")]
    for seeds, nfev in passes:
        _, pess, _ = fit_a100(caps, fit, pess, log, shift, seeds, nfev, idle_w=idle)
    fitted.dvfs[("pessimistic", "A100-SXM")] = pess
    pairs = load_mlperf_pairs(directory)
    capped = [p for p in groups["llama-3.1-8b/H100-SXMx1"] if p.batch_size in (192, 256, 512)]
    h100 = fitted.dvfs[("nominal", "H100-SXM")]
    for seeds, nfev in passes:
        h100 = fit_h100(pairs, capped, h100, log, seeds=seeds, max_nfev=nfev)
    fitted.dvfs[("nominal", "H100-SXM")] = h100
    shift = pessimistic_shift(h100)
    pess = fitted.dvfs[("pessimistic", "H100-SXM")]
    for seeds, nfev in passes:
        pess = fit_h100(pairs, capped, pess, log, shift=shift, seeds=seeds, max_nfev=nfev)
    fitted.dvfs[("pessimistic", "H100-SXM")] = pess


def run_fit(
    data_dir: Path | None = None,
    only: list[str] | None = None,
    log: Log = print,
    max_nfev: int = 60,
    prompt_mean_tok: float | None = None,
) -> FittedSet:
    """Fit the deployments with data (or those named in ``only``, as ``model/GPUxN``; ``dvfs``
    names the DVFS fits). Unfitted constants keep their current values."""
    directory = calibration_dir(data_dir)
    groups: dict[str, list[BatchPoint]] = defaultdict(list)
    for p in load_batch_points(directory):
        groups[p.dataset].append(p)
    fitted = FittedSet.current()
    if prompt_mean_tok is not None:
        fitted.prompt_mean_tok = prompt_mean_tok
    wanted = set(only) if only else None
    if wanted is None or "dvfs" in wanted:
        fit_gpu_dvfs(fitted, directory, groups, log)
    for name, points in sorted(groups.items()):
        if wanted is not None and name not in wanted:
            continue
        p0 = points[0]
        key = (p0.model, p0.gpu, p0.num_gpus)
        # a coarse pass on one seed, then a polish on the mean over every calibration seed
        for seeds, nfev in ((CALIBRATION_SEEDS[:1], max_nfev), (CALIBRATION_SEEDS, 1)):
            fitted.deployments[key] = fit_deployment(
                points,
                fitted.deployments[key],
                log,
                max_nfev=nfev,
                prompt_mean_tok=fitted.prompt_mean_tok,
                dvfs=fitted.dvfs[("nominal", p0.gpu)],
                seeds=seeds,
            )
    return fitted


def render_constants(fitted: FittedSet) -> str:
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
        "# (physics variant, gpu) -> (v_floor, f_v, f_knee); see pals_core/sim/dvfs.py",
        "DVFS: dict[tuple[str, str], tuple[float, float, float]] = {",
    ]
    for physics in PHYSICS_VARIANTS:
        for (variant, gpu), d in fitted.dvfs.items():
            if variant == physics:
                lines.append(
                    f'    ("{variant}", "{gpu}"): ({d.v_floor:.4g}, {d.f_v:.4g}, {d.f_knee:.4g}),'
                )
    lines += [
        "}",
        "# A100-SXM idle draw, fitted within the gpu_limits.csv readings (H100: median reading)",
        f"A100_IDLE_W = {fitted.a100_idle_w:.4g}",
        f"CAP_TARGET_FRAC = {fc.CAP_TARGET_FRAC!r}",
        f"CHAT_PROMPT_MEAN_TOK = {fitted.prompt_mean_tok!r}",
        "",
        "# a generated table, one deployment per two lines:",
        "# fmt: off",
        "DEPLOYMENTS: dict[tuple[str, str, int], tuple[float, ...]] = {",
    ]
    for key, fit in fitted.deployments.items():
        eb, ef, ov, comm, st, mem, comp, kv, etf = fit.as_tuple()
        values = (
            f"{eb:.4g}, {ef:.4g}, {ov:.4g}, {comm:.4g}, {st:.4g}, {mem:.4g}, {comp:.4g}, {int(kv)}"
        )
        if etf != 1.0:
            values += f", {etf:.4g}"
        model, gpu, n = key
        lines.append(f'    ("{model}", "{gpu}", {n}):')
        lines.append(f"        ({values}),")
    lines += ["}", "# fmt: on"]
    return "\n".join(lines) + "\n"


def save_partial(path: Path, fitted: FittedSet, names: list[str]) -> None:
    """Write the fits named in ``names`` (model/GPUxN, or ``dvfs``) for a later merge."""
    chosen = {
        f"{m}/{g}x{n}": list(f.as_tuple())
        for (m, g, n), f in fitted.deployments.items()
        if f"{m}/{g}x{n}" in names or ("dvfs" in names and g == "A100-SXM")
    }
    dvfs = (
        {f"{v}/{g}": dataclasses.astuple(d)[:3] for (v, g), d in fitted.dvfs.items()}
        if "dvfs" in names
        else None
    )
    payload = {"deployments": chosen, "dvfs": dvfs, "a100_idle_w": fitted.a100_idle_w}
    path.write_text(json.dumps(payload))


def merge_partials(paths: list[Path]) -> str:
    """Combine partial fits (later files win) with the current constants into module source."""
    fitted = FittedSet.current()
    for path in paths:
        data = json.loads(path.read_text())
        for name, values in data["deployments"].items():
            model, rest = name.split("/")
            gpu, n = rest.rsplit("x", 1)
            fitted.deployments[(model, gpu, int(n))] = DeploymentFit.from_tuple(tuple(values))
        if data.get("dvfs"):
            for key, (v_floor, f_v, f_knee) in data["dvfs"].items():
                variant, gpu = key.split("/")
                current = fitted.dvfs[(variant, gpu)]
                fitted.dvfs[(variant, gpu)] = dataclasses.replace(
                    current, v_floor=v_floor, f_v=f_v, f_knee=f_knee
                )
            fitted.a100_idle_w = data["a100_idle_w"]
    return render_constants(fitted)


def write_constants(text: str, path: Path | None = None) -> Path:
    target = path or Path(fc.__file__)
    target.write_text(text)
    return target
