"""The online corrections of the PALS controller: the ITL loop (a cap offset that seeks the QoS
edge on measured ITL), the load trim, the per-GPU power weights, the log-space EWMA.

Steps 2-3 of :func:`.pals_decide` (see that module's doc); pure functions of
the controller's state and one observation.
"""

from __future__ import annotations

import math

from pals_core.control.pals_state import Mode, PalsConfig, PalsState, evolve
from pals_core.control.policy import Observation
from pals_core.model.performance import PerformanceModel


def cap_itl_elasticity(
    model: PerformanceModel, cap_w: float, running: float, step_w: float
) -> float:
    """How much the model says one cap step buys in ITL: the relative fall of the predicted ITL
    p99 over the relative rise of the cap, at the current cap and running batch. Dense decode
    at a low clock is elastic (0.3-0.5); an MoE node whose step is dominated by expert
    dispatch is not (< 0.1 above its lowest caps), and there a higher cap only burns power."""
    n = max(running, 1.0)
    base = model.predict(cap_w, n).itl_p99_s
    if not (base > 0 and cap_w > 0):
        return 0.0
    up = model.predict(cap_w + step_w, n).itl_p99_s
    return (1.0 - up / base) / (step_w / cap_w)


def qos_budget_spent(state: PalsState, cfg: PalsConfig) -> bool:
    """More windows over the SLO than ``qos_violation_budget`` of those seen: stop probing."""
    return state.qos_windows_violated > cfg.qos_violation_budget * state.qos_windows_seen


def update_itl_trim(
    state: PalsState,
    obs: Observation,
    cfg: PalsConfig,
    slo_s: float,
    cap_itl_elasticity: float = 1.0,
    ttft_slo_s: float | None = None,
    cap_headroom_w: float = math.inf,
) -> PalsState:
    """The ITL feedback: a cap offset (W per GPU, either sign) that seeks the QoS edge.

    The model's plan is the feed-forward; this loop moves the cap towards the lowest one at which
    the *measured* ITL p99 still sits at ``itl_setpoint`` x SLO, the way the best fixed
    configuration sits just inside the SLO (the plan's margins are for a model it cannot trust
    to a few %).

    The running window's ITL histogram delta (since ``itl_ref``) is read *every period*, and its
    TTFT histogram delta when the SLO has a TTFT limit (queueing shows there first: the window's
    ratio is the worse of ITL p99 / SLO and TTFT p99 / limit, as the QoS window judges it), so
    the offset reacts before a window is lost: as soon as the window holds ``itl_min_samples``
    tokens and its p99 is above ``itl_trim_early`` x SLO (``itl_trim_high`` once the window is
    complete), the offset grows in proportion to the excess, at most ``itl_trim_step_max_w`` per
    step (one outlier prefill must not double the cap; repeated excess keeps pushing), scaled
    down where the model says the cap hardly moves the ITL (``cap_itl_elasticity`` under
    ``itl_full_push_elasticity``: an MoE node's excursions come from its batch, not its clock),
    and a new window begins. A faster clock shortens every step, and by Little's law the
    running batch.
    A completed window whose p99 is under the setpoint, with nobody waiting, lowers the offset
    by ``itl_trim_down_gain_w`` per unit of distance to the setpoint (at most
    ``itl_trim_down_max_w``): slowly, since a lower cap is only worth it if the SLO keeps holding,
    and not for ``itl_hold_s`` after an excess (the edge was found: probing it again at once
    would spend the QoS windows that the excess just warned about). Where the cap is a real
    lever, the excess also records the edge (``itl_edge_cap_w``): :func:`.pals_decide` keeps the
    caps ``itl_edge_margin_w`` above it for ``itl_edge_memory_s``.
    Between the setpoint and ``itl_trim_high`` the offset holds (a deadband against the 5-s p99's
    noise). Bounded (anti-windup): within ``itl_trim_bounds_w``, and :func:`.pals_decide` keeps
    the planned cap plus the offset within the caps that can be written.
    A violated window also raises the QoS guard (:func:`_update_qos_guard`) while the budget
    leaves ``cap_headroom_w`` (W per GPU over the current caps) and its last step was not seen
    to do nothing.
    Each judged window (completed, or cut short by an excess) enters the QoS budget's ledger;
    while more of them went over the SLO than ``qos_violation_budget`` allows
    (:func:`qos_budget_spent`), the offset is floored at zero (no probing below the plan); a
    positive offset still comes down in comfortable windows (frozen, one early excess kept the
    caps over the plan for as long as the budget stayed spent: 100 windows after one excess).
    A multiplicative ITL correction was tried first: p99 over a few seconds is too noisy (it
    swings by 2x at a fixed configuration in the simulator) to scale the whole surface by it.
    """
    state, window = _running_window(state, obs, cfg, slo_s, ttft_slo_s)
    if window is None:
        return state
    ratio, itl_ratio, elapsed = window
    high = cfg.itl_trim_high if elapsed else cfg.itl_trim_early
    judged = elapsed or ratio > high
    violated = judged and ratio > 1.0
    state = evolve(
        state,
        qos_windows_seen=state.qos_windows_seen + judged,
        qos_windows_violated=state.qos_windows_violated + violated,
    )
    spent = qos_budget_spent(state, cfg)
    if judged:
        state = _update_qos_guard(
            state,
            obs,
            cfg,
            itl_ratio if violated else None,
            qos_guard_step_w(cfg, cap_itl_elasticity, cap_headroom_w),
            elapsed and ratio < cfg.itl_setpoint,
        )
    trim = state.cap_trim_w
    if ratio > high:
        state, trim = _push_on_excess(state, obs, cfg, ratio, cap_itl_elasticity)
    elif not elapsed:
        return state  # the window is still running and fine so far
    elif (
        ratio < cfg.itl_setpoint
        and obs.metrics.num_requests_waiting == 0
        and obs.time_s >= state.itl_hold_until_s
        and (not spent or trim > 0.0)
    ):
        step = cfg.itl_trim_down_gain_w * (cfg.itl_setpoint - ratio)
        trim -= min(cfg.itl_trim_down_max_w, step)
    lo, hi = cfg.itl_trim_bounds_w
    if spent:
        lo = max(lo, 0.0)  # the QoS budget is spent: no probing below the plan
    return _restart_window(evolve(state, cap_trim_w=min(max(trim, lo), hi)), obs)


def qos_guard_step_w(cfg: PalsConfig, cap_itl_elasticity: float, cap_headroom_w: float) -> float:
    """How far a violated window raises the QoS guard (W per GPU): the part of
    ``qos_guard_step_w`` the ITL loop's push leaves out (the loop pushes in full where the model's
    cap elasticity reaches ``itl_full_push_elasticity``: the guard adds nothing; not at all
    where it is ~0, an MoE node near its minimum cap: the full step), and nothing when the
    budget leaves no cap above the current one (``cap_headroom_w`` under ``cap_deadband_w``)."""
    if cap_headroom_w < cfg.cap_deadband_w:
        return 0.0
    pushed = min(1.0, max(0.0, cap_itl_elasticity) / cfg.itl_full_push_elasticity)
    return cfg.qos_guard_step_w * (1.0 - pushed)


def _update_qos_guard(
    state: PalsState,
    obs: Observation,
    cfg: PalsConfig,
    violated_itl_ratio: float | None,
    step_w: float,
    comfortable: bool,
) -> PalsState:
    """The QoS guard, at each judged window (``violated_itl_ratio``: its ITL p99 / SLO if it was
    over the SLO, else None).

    Whether power helps is *observed*, not taken from the model: the profile's decode ITL of
    an MoE node does not move with the cap, yet raising it cut the windows its prefill bursts
    broke (29 -> 15 on the 235B's dynamic hour), and a node far slower than its profile (a CPU
    vLLM under an H100 profile, a starved host) may break every window whatever the cap. So the
    first judged window after a step, once the caps carry it (their mean at least half the step
    over the caps when it was taken), tells: still over the SLO with an ITL p99 no lower than
    the one that caused the step, the step did nothing, and the guard falls back to zero and
    takes no step for ``qos_guard_hold_s`` (no floor pinned at the budget for nothing).
    Otherwise a violated window steps the guard up by ``step_w`` (:func:`qos_guard_step_w`),
    held for ``qos_guard_hold_s``; then it comes down by ``qos_guard_decay_w`` per comfortable
    window while the QoS budget is not spent."""
    mean_cap = sum(g.power_limit_w for g in obs.gpus) / len(obs.gpus) if obs.gpus else 0.0
    if math.isfinite(state.qos_guard_step_ratio) and (
        mean_cap >= state.qos_guard_step_cap_w + 0.5 * state.qos_guard_last_step_w
    ):
        futile = violated_itl_ratio is not None and violated_itl_ratio >= state.qos_guard_step_ratio
        state = evolve(state, qos_guard_step_ratio=math.inf)
        if futile:
            return evolve(
                state, qos_guard_w=0.0, qos_guard_futile_until_s=obs.time_s + cfg.qos_guard_hold_s
            )
    if violated_itl_ratio is not None:
        if step_w <= 0 or obs.time_s < state.qos_guard_futile_until_s:
            return state
        return evolve(
            state,
            qos_guard_w=min(cfg.qos_guard_max_w, state.qos_guard_w + step_w),
            qos_guard_until_s=obs.time_s + cfg.qos_guard_hold_s,
            qos_guard_step_ratio=violated_itl_ratio,
            qos_guard_step_cap_w=mean_cap,
            qos_guard_last_step_w=step_w,
        )
    if (
        comfortable
        and state.qos_guard_w > 0
        and obs.metrics.num_requests_waiting == 0
        and obs.time_s >= state.qos_guard_until_s
        and not qos_budget_spent(state, cfg)
    ):
        return evolve(state, qos_guard_w=max(0.0, state.qos_guard_w - cfg.qos_guard_decay_w))
    return state


def _restart_window(state: PalsState, obs: Observation) -> PalsState:
    """A new QoS window of the ITL loop begins at this observation."""
    return evolve(
        state,
        itl_ref=obs.metrics.inter_token_latency_seconds,
        ttft_ref=obs.metrics.time_to_first_token_seconds,
        itl_ref_time_s=obs.time_s,
    )


def _running_window(
    state: PalsState, obs: Observation, cfg: PalsConfig, slo_s: float, ttft_slo_s: float | None
) -> tuple[PalsState, tuple[float, float, bool] | None]:
    """The running window's worst p99 / SLO (ITL, and TTFT when limited), its ITL p99 / SLO,
    and whether it is complete; None while it holds too few tokens to judge (a new one begins
    once complete)."""
    hist = obs.metrics.inter_token_latency_seconds
    if state.itl_ref is None or hist.upper_bounds_s != state.itl_ref.upper_bounds_s:
        return _restart_window(state, obs), None
    delta = hist.minus(state.itl_ref)
    elapsed = obs.time_s - state.itl_ref_time_s >= cfg.itl_window_s - 1e-9
    if delta.count < cfg.itl_min_samples:
        return (_restart_window(state, obs) if elapsed else state), None
    itl_ratio = ratio = delta.quantile(0.99) / slo_s
    ttft_hist = obs.metrics.time_to_first_token_seconds
    ref = state.ttft_ref
    if (
        ttft_slo_s is not None
        and ref is not None
        and ttft_hist.upper_bounds_s == ref.upper_bounds_s
    ):
        ttft = ttft_hist.minus(ref)
        if ttft.count:
            ratio = max(ratio, ttft.quantile(0.99) / ttft_slo_s)
    return state, (ratio, itl_ratio, elapsed)


def _push_on_excess(
    state: PalsState, obs: Observation, cfg: PalsConfig, ratio: float, elasticity: float
) -> tuple[PalsState, float]:
    """An excess: raise the offset (in proportion, bounded, scaled by the cap's leverage), hold
    it up for ``itl_hold_s``, and remember the edge if the loop was probing below the plan."""
    trim = state.cap_trim_w
    at_max = all(g.power_limit_w >= g.max_limit_w - 1.0 for g in obs.gpus)
    push = min(cfg.itl_trim_step_max_w, cfg.itl_trim_gain_w * (ratio - cfg.itl_trim_high))
    elastic = max(0.0, elasticity) / cfg.itl_full_push_elasticity
    push *= min(1.0, elastic)
    if not at_max and push >= 1.0:
        trim += push
        state = evolve(state, itl_hold_until_s=obs.time_s + cfg.itl_hold_s)
    probing = state.cap_trim_w <= -cfg.itl_edge_probe_w
    if probing and not at_max and elastic >= cfg.itl_edge_min_elastic:
        # The loop was probing below the plan and the cap is a real lever here: remember
        # where the edge was, the caps in force when the excess showed. (At or above the
        # plan an excess is a burst, not an edge; where the cap is no lever it says nothing
        # about the caps.)
        edge_w = sum(g.power_limit_w for g in obs.gpus) / len(obs.gpus)
        state = evolve(
            state, itl_edge_cap_w=edge_w, itl_edge_until_s=obs.time_s + cfg.itl_edge_memory_s
        )
    return state, trim


def clamp(x: float, bounds: tuple[float, float]) -> float:
    return min(bounds[1], max(bounds[0], x))


def log_ewma(
    old: float, ratio: float, dt_s: float, tau_s: float, bounds: tuple[float, float]
) -> float:
    """Move ``old`` towards ``ratio`` in log space, bounded (the bound is the anti-windup)."""
    if not (ratio > 0 and math.isfinite(ratio)):
        return old
    alpha = 1.0 - math.exp(-dt_s / tau_s)
    return clamp(math.exp(math.log(old) + alpha * (math.log(ratio) - math.log(old))), bounds)


def update_load_trim(
    state: PalsState, obs: Observation, cfg: PalsConfig, target: float, served: float, dt_s: float
) -> PalsState:
    """Integral action on the throughput error: grows while the queue builds and service falls
    short of the target; decays otherwise. Frozen in DEGRADED (capacity is already maximal)."""
    if not (dt_s > 0 and target > 0 and math.isfinite(served)):
        return state
    trim = state.load_trim
    waiting = obs.metrics.num_requests_waiting > 0
    if waiting and served < 0.97 * target and state.mode != Mode.DEGRADED:
        trim += cfg.trim_ki_per_s * dt_s * (1.0 - served / target)
    elif not waiting:
        trim -= cfg.trim_decay_per_s * dt_s
    return evolve(state, load_trim=clamp(trim, (1.0, 1.0 + cfg.trim_max)))


def update_gpu_weights(
    state: PalsState, period_power: list[float], limits: list[float], dt_s: float, cfg: PalsConfig
) -> PalsState:
    """Per-GPU power shares, learned only while no cap binds (then differences are intrinsic)."""
    n = len(period_power)
    weights = state.gpu_weights if len(state.gpu_weights) == n else (1.0,) * n
    if n < 2 or any(p >= 0.92 * c for p, c in zip(period_power, limits, strict=True)):
        return evolve(state, gpu_weights=weights)
    mean_p = sum(period_power) / n
    if mean_p <= 0:
        return evolve(state, gpu_weights=weights)
    alpha = 1.0 - math.exp(-dt_s / cfg.gpu_weight_tau_s)
    new = [
        clamp(w + alpha * (p / mean_p - w), cfg.gpu_weight_bounds)
        for w, p in zip(weights, period_power, strict=True)
    ]
    mean_w = sum(new) / n
    return evolve(state, gpu_weights=tuple(w / mean_w for w in new))
