"""Steps 4-5 of the PALS control law (:func:`.pals_decide`): plan the operating point within the
budget and the SLO, then smooth the planned cap (the ITL loop's offset, deadband, rate limits)
and batch limit. Pure functions of the controller's state and one observation."""

from __future__ import annotations

import math

from pals_core.control.pals_budget import allowed_total_w
from pals_core.control.pals_corrections import qos_budget_spent
from pals_core.control.pals_state import PalsConfig, PalsState, evolve
from pals_core.control.policy import Observation
from pals_core.control.qos import QoSPolicy
from pals_core.model.performance import PerformanceModel
from pals_core.model.planner import Plan, PlanRequest, plan_operating_point


def cap_range_w(obs: Observation, allowed_w: float) -> tuple[float, float]:
    """The lowest and highest mean cap the plan may use (the budget's even share on top)."""
    n = len(obs.gpus)
    max_cap = min(sum(g.max_limit_w for g in obs.gpus) / n, allowed_w / n)
    min_cap = max(g.min_limit_w for g in obs.gpus)
    return min(min_cap, max_cap), max_cap


def plan_step(
    state: PalsState,
    obs: Observation,
    model: PerformanceModel,
    cfg: PalsConfig,
    qos: QoSPolicy,
    target: float,
    mean_cap_w: float,
) -> Plan:
    """Step 4: the (cap, batch) of least power that serves the target within budget and SLO."""
    min_cap, max_cap = cap_range_w(obs, allowed_total_w(obs, state, cfg))
    return plan_operating_point(
        model.table,
        PlanRequest(
            load_tok_s=target * state.load_trim,
            max_cap_w=max_cap,
            min_cap_w=min_cap,
            itl_p99_slo_s=qos.itl_p99_slo_s * cfg.itl_slo_margin,
            headroom=cfg.headroom,
            max_batch=cfg.max_batch or model.max_batch,
            min_batch=cfg.min_batch,
            throughput_scale=state.throughput_scale,
            power_scale=state.power_scale,
            itl_scale=1.0 / state.throughput_scale,
            current_cap_w=mean_cap_w if mean_cap_w <= max_cap else None,
            switch_margin=cfg.switch_margin,
            burst_margin=cfg.burst_margin,
            batch_headroom=cfg.batch_headroom,
        ),
    )


def smoothed_cap_w(
    state: PalsState,
    obs: Observation,
    cfg: PalsConfig,
    plan: Plan,
    tracking: bool,
    mean_cap_w: float,
    itl_push_w: float,
) -> tuple[PalsState, float]:
    """Step 5 (caps): the planned cap plus the ITL offset (bounded: anti-windup), then the
    deadband and rate limits. Returns the state with the bounded offset and the mean cap."""
    min_cap, max_cap = cap_range_w(obs, allowed_total_w(obs, state, cfg))
    mean_cap = mean_cap_w
    # Anti-windup: the ITL offset never reaches past the caps that can be written; a negative
    # offset (the plan's margins were more than the measured ITL needs) only while tracking (a
    # degraded plan is already the most throughput the budget allows).
    floor_cap = min_cap
    if obs.time_s < state.itl_edge_until_s:
        # An ITL excess showed at itl_edge_cap_w not long ago: do not probe below it again
        # until the memory lapses (each probe of a known edge costs QoS windows).
        floor_cap = max(floor_cap, min(max_cap, state.itl_edge_cap_w + cfg.itl_edge_margin_w))
    trim = min(max(state.cap_trim_w, floor_cap - plan.cap_w), max_cap - plan.cap_w)
    if not tracking or qos_budget_spent(state, cfg):
        trim = max(trim, 0.0)
    state = evolve(state, cap_trim_w=trim)
    # The QoS guard is a floor over the plan that violated windows raise (hysteresis).
    cap = min(max_cap, plan.cap_w + state.cap_offset_w)
    budgeted = obs.power_budget_w is not None and math.isfinite(max_cap)
    # The budget bound the caps at the last decision and has risen since: the demand the plan
    # saw under it was censored (the served rate cannot show more than the budget let through),
    # so the caps take the new share at once, as cap-only does, and come down to the plan at
    # ``cap_step_down_w`` per period once the uncensored rate shows it (not up at
    # ``cap_step_up_w`` per period from the old share, windows lost on the way).
    released = max_cap > state.budget_share_bound_w + cfg.cap_deadband_w
    bound = budgeted and (not tracking or cap >= max_cap * (1.0 - cfg.budget_snap_frac))
    state = evolve(state, budget_share_bound_w=max_cap if bound else math.inf)
    if released:
        cap = max_cap
    if budgeted:
        near = cap >= max_cap * (1.0 - cfg.budget_snap_frac)
        spent = qos_budget_spent(state, cfg)
        if near or (spent and not tracking):
            # Near the budget's share the saving is small and the QoS is what is at stake;
            # with the QoS budget spent where the budget binds (the plan cannot track the
            # demand under it), the budget's power buys it back (as cap-only does).
            cap = max_cap
        elif spent:
            # Spent under a loose budget: a margin over the plan, not the whole share.
            cap = min(max_cap, cap + cfg.qos_spent_margin_w)
    if abs(cap - mean_cap) < cfg.cap_deadband_w and mean_cap <= max_cap + 1e-9:
        cap = mean_cap
    elif cap < mean_cap - cfg.cap_step_down_w and mean_cap <= max_cap + 1e-9:
        cap = mean_cap - cfg.cap_step_down_w
    elif obs.metrics.num_requests_waiting == 0 and tracking and not released:
        # Nobody waits: a higher plan is the demand estimate's noise more often than new
        # demand, and near the top of the capacity curve a few % of estimate are 100+ W. The
        # plan's rises are slewed; the ITL loop's push goes through at once, and so does any
        # rise while requests wait.
        cap = min(cap, mean_cap + cfg.cap_step_up_w + itl_push_w)
    return state, min(cap, max_cap)


def smoothed_batch(obs: Observation, cfg: PalsConfig, planned: int) -> int:
    """Step 5 (batch): never below the running batch x (1 + ``batch_headroom``) (a limit near
    the running batch queues every burst, and one under it every arrival until the batch
    drains: TTFT excesses for nothing), at most the engine's default; then an asymmetric
    deadband: more capacity is taken at once, a smaller limit only when it is much smaller (a
    larger limit costs nothing while the running batch follows the load)."""
    floor = math.ceil(obs.metrics.num_requests_running * (1.0 + cfg.batch_headroom))
    planned = max(planned, min(floor, max(cfg.default_batch, planned)))
    grow = planned > obs.batch_limit * (1.0 + cfg.batch_deadband_frac)
    shrink = planned < obs.batch_limit * (1.0 - cfg.batch_shrink_frac)
    return planned if grow or shrink else obs.batch_limit
