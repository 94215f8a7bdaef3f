"""Budget safety of the PALS controller: the caps' allowance under a budget, fitting caps to it,
and :func:`pals_guard`, the per-tick check (section 4 of ``docs/controller.md``)."""

from __future__ import annotations

import math

from pals_core.control.pals_corrections import clamp
from pals_core.control.pals_state import Mode, PalsConfig, PalsState, evolve
from pals_core.control.policy import Action, Observation


def valid(obs: Observation) -> bool:
    return len(obs.gpus) > 0 and all(
        math.isfinite(g.power_w) and g.power_w >= 0 and math.isfinite(g.energy_j) for g in obs.gpus
    )


def allowed_total_w(obs: Observation, state: PalsState, cfg: PalsConfig) -> float:
    """The most the caps may sum to (inf when unconstrained)."""
    budget = obs.power_budget_w
    if budget is None or budget == math.inf:  # +inf: no limit (inf - inf would be NaN)
        return math.inf
    return max(0.0, (budget - cfg.budget_margin(budget)) * state.budget_scale)


def below_minima(obs: Observation, allowed_w: float) -> bool:
    """The budget cannot even carry the GPUs' minimum caps (infeasible whatever the knobs)."""
    return allowed_w <= sum(g.min_limit_w for g in obs.gpus)


def fit_caps(obs: Observation, caps: list[float], allowed_w: float) -> tuple[float, ...]:
    """Clamp each cap to its GPU's range, then scale the excess over the minima down to the
    allowed total (never below a GPU's minimum: a budget under the minima gets the minima)."""
    lo = [g.min_limit_w for g in obs.gpus]
    hi = [g.max_limit_w for g in obs.gpus]
    caps = [min(h, max(m, c)) for c, m, h in zip(caps, lo, hi, strict=True)]
    total = sum(caps)
    if total > allowed_w:
        floor = sum(lo)
        if allowed_w <= floor:
            return tuple(lo)
        share = (allowed_w - floor) / (total - floor)
        caps = [m + (c - m) * share for c, m in zip(caps, lo, strict=True)]
    return tuple(caps)


def distribute(
    obs: Observation, mean_cap_w: float, weights: tuple[float, ...], allowed_w: float
) -> tuple[float, ...]:
    n = len(obs.gpus)
    w = weights if len(weights) == n else (1.0,) * n
    return fit_caps(obs, [mean_cap_w * wi for wi in w], allowed_w)


def safe_default(obs: Observation, state: PalsState, cfg: PalsConfig) -> Action:
    caps = [g.max_limit_w for g in obs.gpus]
    allowed = allowed_total_w(obs, state, cfg)
    return Action(
        power_limits_w=fit_caps(obs, caps, allowed),
        batch_limit=cfg.default_batch,
        state=state.mode.value,
        qos_risk=below_minima(obs, allowed),
    )


def interval_power(
    energy_j: tuple[float, ...], prev: tuple[float, ...], dt_s: float
) -> list[float] | None:
    if len(prev) != len(energy_j) or not dt_s > 0:
        return None
    return [(e - p) / dt_s for e, p in zip(energy_j, prev, strict=True)]


def pals_guard(
    state: PalsState, obs: Observation, cfg: PalsConfig
) -> tuple[PalsState, Action | None]:
    """The per-tick budget check. Records the running batch for the next decision."""
    energy = tuple(g.energy_j for g in obs.gpus)
    new = evolve(
        state,
        running_sum=state.running_sum + obs.metrics.num_requests_running,
        running_n=state.running_n + 1,
    )
    budget = obs.power_budget_w
    if budget is None or not obs.gpus:
        return new, None
    allowed = allowed_total_w(obs, new, cfg)
    limits = [g.power_limit_w for g in obs.gpus]
    if sum(limits) > allowed + 0.5:  # the budget fell below the caps: cut now
        caps = fit_caps(obs, limits, allowed)
        new = evolve(new, last_cut_s=obs.time_s, last_change_s=obs.time_s)
        if all(abs(c - lim) < 0.5 for c, lim in zip(caps, limits, strict=True)):
            return new, None  # already at the minima under a budget below them: nothing to cut
        risk = new.mode in (Mode.DEGRADED, Mode.FAILSAFE) or below_minima(obs, allowed)
        return new, Action(power_limits_w=caps, state=new.mode.value, qos_risk=risk)
    if not valid(obs):
        return new, None
    measured = _window_power_w(state, obs, energy, cfg)
    if measured is None:  # the window is still filling
        unset = len(state.overdraw_from_energy_j) != len(energy)  # includes the first tick
        # A cut since the window began: judge only the power after it has acted.
        cut = state.overdraw_from_s < state.last_cut_s + cfg.settle_s <= obs.time_s
        if unset or cut:
            new = evolve(new, overdraw_from_s=obs.time_s, overdraw_from_energy_j=energy)
        return new, None
    new = evolve(new, overdraw_from_s=obs.time_s, overdraw_from_energy_j=energy)
    if measured > budget:
        # The caps have acted and power over the window is still over: the devices overdraw.
        factor = (allowed / measured) if measured > 0 else 1.0
        scale = clamp(new.budget_scale * factor, (0.7, 1.0))
        new = evolve(
            new,
            budget_scale=scale,
            mode=Mode.FAILSAFE,
            healthy_periods=0,
            last_cut_s=obs.time_s,
            last_change_s=obs.time_s,
        )
        caps = fit_caps(obs, [c * factor for c in limits], allowed_total_w(obs, new, cfg))
        return new, Action(power_limits_w=caps, state=new.mode.value, qos_risk=True)
    return new, None


def _window_power_w(
    state: PalsState, obs: Observation, energy: tuple[float, ...], cfg: PalsConfig
) -> float | None:
    """The GPUs' summed power over the guard's window, once it spans ``overdraw_window_s`` and
    began after the last cut had ``settle_s`` to act; None before."""
    start = state.overdraw_from_s
    if not math.isfinite(start) or start < state.last_cut_s + cfg.settle_s:
        return None
    dt_s = obs.time_s - start
    if dt_s < cfg.overdraw_window_s - 1e-9:
        return None
    power = interval_power(energy, state.overdraw_from_energy_j, dt_s)
    return None if power is None else sum(power)
