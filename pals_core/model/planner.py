"""Choose the operating point: the (per-GPU cap, batch limit) that serves a load at least power.

Below saturation the running batch is not the batch limit: it follows the load (Little's law:
running = arrival rate x time in system), and settles where the saturated throughput curve of the
current cap reaches the load, ``T(cap, n) = L``. So for each cap the planner finds that operating
concurrency ``n(cap)`` on the tabulated curves, its power ``P(cap, n(cap))`` and its ITL p99
(at ``n`` plus a burst margin); among the caps whose ITL meets the SLO there, the cheapest wins.
A lower cap saves power twice: a slower clock, and a fuller batch (more tokens per weight read).

The batch limit sets the *capacity* ``T(cap, limit)``: it must exceed the load by a headroom, so a
Poisson burst drains instead of queueing up; above that it may grow to ``1 + batch_headroom`` times
the load as far as the ITL p99 with the batch full stays within the SLO. The limit is the ITL
guard during bursts: at a low clock a full batch is what breaks the ITL p99.

When no cap within the budget serves the load within the SLO, the planner maximises throughput
within the budget (the highest cap allowed, the largest batch, which also gives the lowest ITL at
a given load) and says so (``feasible=False``).

Model error is corrected by multiplicative factors learned online (``throughput_scale``,
``power_scale``, ``itl_scale``), so this stays a pure function of its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pals_core.model.performance import FloatArray, OperatingTable

IntArray = NDArray[np.intp]

BATCH_SNAP = 0.9
"""A limit within 10 % of the largest batch becomes the largest batch (no 241 for 256)."""
CAPACITY_TOLERANCE = 0.98
"""Caps whose capacity is within 2 % of the best reachable count as equally fast."""
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class PlanRequest:
    load_tok_s: float
    """The throughput to serve (node output tokens/s)."""
    max_cap_w: float
    """The highest per-GPU cap allowed (GPU maximum, or the budget's share)."""
    min_cap_w: float
    itl_p99_slo_s: float
    headroom: float = 0.12
    """Required capacity margin over the load: capacity >= load x (1 + headroom)."""
    max_batch: int = 1024
    min_batch: int = 8
    throughput_scale: float = 1.0
    power_scale: float = 1.0
    batch_headroom: float = 0.3
    """The batch limit gives capacity up to load x (1 + batch_headroom) where the ITL SLO allows,
    and never less than load x (1 + headroom)."""
    marginal_saving: float = 0.08
    """Accept half the headroom when it saves at least this fraction of the power."""
    burst_margin: float = 0.15
    """ITL is checked at the operating concurrency x (1 + burst_margin)."""
    current_cap_w: float | None = None
    """The cap in force: kept while it stays feasible and within ``switch_margin`` of the best
    predicted power (hysteresis: model noise must not make the cap hop between near-equals)."""
    switch_margin: float = 0.03
    itl_scale: float = 1.0
    """Measured over predicted ITL p99 (learned directly from the ITL histograms)."""


@dataclass(frozen=True, slots=True)
class Plan:
    cap_w: float
    """Mean per-GPU cap."""
    batch_limit: int
    feasible: bool
    """False when the load cannot be served within the cap range (capacity was maximised)."""
    predicted_power_w: float
    """Node power at the operating point."""
    predicted_capacity_tok_s: float
    """Throughput with the batch full at this cap and limit."""
    operating_batch: float
    """The running batch the load should settle to."""
    itl_ok: bool


def _first_at_least(values: FloatArray, threshold: float) -> tuple[IntArray, BoolArray]:
    """Per row: the first column where ``values >= threshold`` (rows are non-decreasing), and
    whether one exists."""
    ok = values >= threshold
    return ok.argmax(axis=1), ok.any(axis=1)


@dataclass(frozen=True, slots=True)
class _Grid:
    """The table rows the cap range allows and the columns within ``max_batch``, corrected by
    the learned scales."""

    caps_w: FloatArray
    """All the table's caps (the infeasible plan may reach past the allowed rows)."""
    row_caps: FloatArray
    rows: IntArray
    batches: FloatArray
    last: int
    """The largest batch column."""
    thr: FloatArray
    raw_power: FloatArray
    """The table's node power over the grid, before the correction (see :meth:`power`)."""
    power_scale: float
    row_limit_w: FloatArray
    """Per row: the sum of the caps (node power never exceeds it, whatever the correction)."""
    itl: FloatArray

    def power(self, rows: IntArray | int, cols: IntArray | int) -> FloatArray:
        """The corrected node power at ``(rows, cols)``, computed only where the plan looks
        (elementwise, so the same values as over the whole grid)."""
        return np.minimum(self.raw_power[rows, cols] * self.power_scale, self.row_limit_w[rows])


@dataclass(frozen=True, slots=True)
class _Operating:
    """Per row: where the load settles, T(cap, n) = load (linear between columns)."""

    col: IntArray
    """The first column whose throughput reaches the load."""
    reach: BoolArray
    power: FloatArray
    batch: FloatArray
    itl_ok: BoolArray
    """Whether the load is reached and the ITL p99 at ``batch`` plus the burst margin is met."""


@dataclass(frozen=True, slots=True)
class _Limits:
    """Per row: the batch-limit columns."""

    best: float
    """The largest capacity among the rows whose operating point meets the ITL SLO."""
    needed: float
    """The capacity the load needs with headroom (within reach)."""
    want_col: IntArray
    itl_col: IntArray
    """The largest column whose ITL p99 with the batch full meets the SLO."""
    lim_col: IntArray


def _allowed_grid(table: OperatingTable, req: PlanRequest) -> _Grid:
    caps = table.caps_w
    lo = int(np.searchsorted(caps, req.min_cap_w - 1e-9))
    hi = int(np.searchsorted(caps, req.max_cap_w + 1e-9))
    if hi <= lo:  # the allowed range is narrower than one table step: use the nearest row
        lo = min(max(hi - 1, 0), len(caps) - 1)
        hi = lo + 1
    # The batches are sorted: those within ``max_batch`` are a prefix (a view, no copy).
    ncols = int(np.searchsorted(table.batches, req.max_batch, side="right"))
    batches = table.batches[:ncols]
    row_caps = caps[lo:hi]
    return _Grid(
        caps_w=caps,
        row_caps=row_caps,
        rows=np.arange(hi - lo),
        batches=batches,
        last=len(batches) - 1,
        thr=table.throughput_tok_s[lo:hi, :ncols] * req.throughput_scale,
        raw_power=table.power_w[lo:hi, :ncols],
        power_scale=req.power_scale,
        row_limit_w=row_caps * table.num_gpus,
        itl=table.itl_p99_s[lo:hi, :ncols] * req.itl_scale,
    )


def _operating_points(g: _Grid, req: PlanRequest) -> _Operating:
    """Operating concurrency where T(cap, n) = load (linear between columns), its power and
    ITL."""
    load = req.load_tok_s
    rows = g.rows
    op_col, reach = _first_at_least(g.thr, load)
    prev = np.maximum(op_col - 1, 0)
    t_hi, t_lo = g.thr[rows, op_col], g.thr[rows, prev]
    frac = np.where(t_hi > t_lo, (load - t_lo) / np.maximum(t_hi - t_lo, 1e-12), 1.0)
    frac = np.clip(np.where(op_col == 0, 1.0, frac), 0.0, 1.0)
    p_lo = g.power(rows, prev)
    op_power = p_lo + frac * (g.power(rows, op_col) - p_lo)
    op_batch = g.batches[prev] + frac * (g.batches[op_col] - g.batches[prev])
    burst_col = np.minimum(np.searchsorted(g.batches, op_batch * (1.0 + req.burst_margin)), g.last)
    itl_at_op = g.itl[rows, burst_col]
    return _Operating(
        col=op_col,
        reach=reach,
        power=op_power,
        batch=op_batch,
        itl_ok=reach & (itl_at_op <= req.itl_p99_slo_s),
    )


def _batch_limits(g: _Grid, op: _Operating, req: PlanRequest) -> _Limits:
    """Batch limit per row: capacity for the load with headroom (a must), then up to the load x
    (1 + batch_headroom) as far as the ITL SLO allows with the batch full. The limit is the ITL
    guard during bursts: a full batch at a low clock is what breaks the ITL p99."""
    load = req.load_tok_s
    thr, last = g.thr, g.last
    capacity_max = thr[:, last]
    best = float(capacity_max[op.itl_ok].max()) if op.itl_ok.any() else 0.0
    needed = min(load * (1.0 + req.headroom), best * CAPACITY_TOLERANCE)
    cap_col, cap_ok = _first_at_least(thr, needed)
    cap_col = np.where(cap_ok, cap_col, last)
    want = min(load * (1.0 + req.batch_headroom), best * CAPACITY_TOLERANCE)
    want_col, want_ok = _first_at_least(thr, want)
    want_col = np.where(want_ok, want_col, last)
    itl_col = np.maximum((g.itl <= req.itl_p99_slo_s).sum(axis=1) - 1, 0)
    min_col = min(int(np.searchsorted(g.batches, req.min_batch - 1e-9)), last)
    lim_col = np.maximum(np.maximum(cap_col, np.minimum(want_col, itl_col)), min_col)
    return _Limits(best=best, needed=needed, want_col=want_col, itl_col=itl_col, lim_col=lim_col)


def _cheapest_feasible_row(
    g: _Grid, op: _Operating, lim: _Limits, feasible: BoolArray, req: PlanRequest
) -> int:
    """The row serving the load at least power, with two refinements."""
    cost = np.where(feasible, op.power, np.inf)
    r = int(np.argmin(cost))
    # Marginal tok/J test: full headroom may sit just past a flat stretch of the capacity
    # curve (capacity hardly grows with the cap once the cap stops binding), where a few %
    # of headroom cost a large step in cap and power. Half the headroom is then accepted
    # when it saves at least ``marginal_saving`` of the power.
    capacity_max = g.thr[:, g.last]
    load = req.load_tok_s
    half = op.itl_ok & (capacity_max >= min(load * (1.0 + req.headroom / 2), lim.needed))
    r_half = int(np.argmin(np.where(half, op.power, np.inf)))
    if op.power[r_half] < op.power[r] * (1.0 - req.marginal_saving):
        r = r_half
        feasible = half
        cost = np.where(half, op.power, np.inf)
    # Hysteresis: the cap in force stays while it is feasible and nearly as cheap.
    if req.current_cap_w is not None:
        cur = int(np.clip(np.searchsorted(g.row_caps, req.current_cap_w), 0, len(g.rows) - 1))
        if feasible[cur] and cost[cur] <= cost[r] * (1.0 + req.switch_margin):
            r = cur
    return r


def _feasible_plan(g: _Grid, op: _Operating, lim: _Limits, r: int) -> Plan:
    col = int(lim.lim_col[r])
    last = g.last
    if g.batches[col] >= BATCH_SNAP * g.batches[last] and lim.itl_col[r] == last:  # BATCH_SNAP
        col = last
    return Plan(
        cap_w=float(g.row_caps[r]),
        batch_limit=round(float(g.batches[col])),
        feasible=True,
        predicted_power_w=float(op.power[r]),
        predicted_capacity_tok_s=float(g.thr[r, col]),
        operating_batch=float(op.batch[r]),
        itl_ok=True,
    )


def _infeasible_plan(g: _Grid, op: _Operating, lim: _Limits, req: PlanRequest) -> Plan:
    """The most throughput the budget allows. The highest cap is also the fastest clock, so the
    lowest ITL at any load; the largest batch gives the most capacity."""
    r = len(g.rows) - 1
    last = g.last
    cap = max(float(g.row_caps[r]), min(req.max_cap_w, float(g.caps_w[-1])))
    full_col, full_reach = _first_at_least(g.thr[r : r + 1], req.load_tok_s * (1.0 + req.headroom))
    col = int(max(min(lim.itl_col[r], lim.want_col[r]), full_col[0])) if full_reach[0] else last
    return Plan(
        cap_w=cap,
        batch_limit=round(float(g.batches[col])),
        feasible=False,
        predicted_power_w=float(g.power(r, col) if not op.reach[r] else op.power[r]),
        predicted_capacity_tok_s=float(g.thr[r, col]),
        operating_batch=float(g.batches[col] if not op.reach[r] else op.batch[r]),
        itl_ok=bool(op.itl_ok[r]),
    )


def plan_operating_point(table: OperatingTable, req: PlanRequest) -> Plan:
    """The cheapest (cap, batch limit) that serves ``req.load_tok_s`` within the ITL SLO, or
    the most throughput the cap range allows (``feasible=False``)."""
    g = _allowed_grid(table, req)
    op = _operating_points(g, req)
    lim = _batch_limits(g, op, req)
    capacity_max = g.thr[:, g.last]
    feasible = op.itl_ok & (capacity_max >= lim.needed) & (lim.best >= req.load_tok_s)
    if feasible.any():
        return _feasible_plan(g, op, lim, _cheapest_feasible_row(g, op, lim, feasible, req))
    return _infeasible_plan(g, op, lim, req)
