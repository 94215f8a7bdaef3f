"""Choose the operating point: the (per-GPU cap, batch limit) that serves a load at least power.

Below saturation the running batch is not the batch limit: it follows the load (Little's law:
running = arrival rate x time in system), and settles where the saturated throughput curve of the
current cap reaches the load, ``T(cap, n) = L``. So for each cap the planner finds that operating
concurrency ``n(cap)`` on the tabulated curves and its power ``P(cap, n(cap))``; the cheapest cap
wins. The batch limit then sets the *capacity* ``T(cap, limit)``: it must exceed the load by a
headroom (so a Poisson burst drains instead of queueing up) while the ITL p99 with the batch full
stays within the SLO. The limit chosen is the largest batch that keeps ITL within the SLO (most
capacity for bursts at no energy cost, since the running batch is set by the load, not the limit).

When no cap within the budget can serve the load, the planner maximises capacity within the budget
(still within the ITL SLO when any batch allows it) and says so (``feasible=False``).

Model error is corrected by multiplicative factors learned online (``throughput_scale``,
``power_scale``, ``itl_scale``), so this stays a pure function of its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pals_core.model.performance import FloatArray, OperatingTable

IntArray = NDArray[np.intp]

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


def plan_operating_point(table: OperatingTable, req: PlanRequest) -> Plan:
    caps = table.caps_w
    lo = int(np.searchsorted(caps, req.min_cap_w - 1e-9))
    hi = int(np.searchsorted(caps, req.max_cap_w + 1e-9))
    if hi <= lo:  # the allowed range is narrower than one table step: use the nearest row
        lo = min(max(hi - 1, 0), len(caps) - 1)
        hi = lo + 1
    bcols = table.batches <= req.max_batch
    batches = table.batches[bcols]
    thr = table.throughput_tok_s[lo:hi][:, bcols] * req.throughput_scale
    row_caps = caps[lo:hi]
    # Node power never exceeds the sum of the caps, whatever the correction says.
    power = np.minimum(
        table.power_w[lo:hi][:, bcols] * req.power_scale, row_caps[:, None] * table.num_gpus
    )
    itl = table.itl_p99_s[lo:hi][:, bcols] * req.itl_scale
    rows = np.arange(hi - lo)

    # Largest ITL-feasible batch per row (ITL is non-decreasing along a row).
    itl_ok = itl <= req.itl_p99_slo_s
    n_ok = itl_ok.sum(axis=1)
    lim_col = np.maximum(n_ok - 1, 0)
    min_col = int(np.searchsorted(batches, req.min_batch - 1e-9))
    lim_col = np.maximum(lim_col, min(min_col, len(batches) - 1))
    capacity = thr[rows, lim_col]
    row_itl_ok = n_ok > 0

    # Operating concurrency where T(cap, n) = load, with linear interpolation between columns.
    op_col, reach = _first_at_least(thr, req.load_tok_s)
    prev = np.maximum(op_col - 1, 0)
    t_hi, t_lo = thr[rows, op_col], thr[rows, prev]
    frac = np.where(t_hi > t_lo, (req.load_tok_s - t_lo) / np.maximum(t_hi - t_lo, 1e-12), 1.0)
    frac = np.clip(np.where(op_col == 0, 1.0, frac), 0.0, 1.0)
    op_power = power[rows, prev] + frac * (power[rows, op_col] - power[rows, prev])
    op_batch = batches[prev] + frac * (batches[op_col] - batches[prev])

    usable = reach & row_itl_ok
    best_capacity = float(capacity[usable].max()) if usable.any() else 0.0
    if best_capacity >= req.load_tok_s:
        # Full headroom where possible; otherwise any cap within CAPACITY_TOLERANCE of the best
        # capacity (capacity is flat once the cap stops binding: a few % more would cost a
        # large jump in cap and power).
        needed = min(req.load_tok_s * (1.0 + req.headroom), best_capacity * CAPACITY_TOLERANCE)
        feasible = usable & (capacity >= needed)
        cost = np.where(feasible, op_power, np.inf)
        r = int(np.argmin(cost))
        if req.current_cap_w is not None:
            cur = int(np.clip(np.searchsorted(row_caps, req.current_cap_w), 0, len(rows) - 1))
            if feasible[cur] and cost[cur] <= cost[r] * (1.0 + req.switch_margin):
                r = cur
        return Plan(
            cap_w=float(row_caps[r]),
            batch_limit=round(float(batches[lim_col[r]])),
            feasible=True,
            predicted_power_w=float(op_power[r]),
            predicted_capacity_tok_s=float(capacity[r]),
            operating_batch=float(op_batch[r]),
            itl_ok=True,
        )
    # Infeasible: the most capacity within the ITL SLO (or outright when no batch meets it),
    # at the least power among caps within CAPACITY_TOLERANCE of it.
    if row_itl_ok.any():
        score = np.where(row_itl_ok, capacity, -np.inf)
        top = float(score.max())
        near = row_itl_ok & (capacity >= top * CAPACITY_TOLERANCE)
        r = int(np.argmin(np.where(near, power[rows, lim_col], np.inf)))
        col = int(lim_col[r])
    else:
        r = len(rows) - 1
        col = len(batches) - 1
    cap = float(row_caps[r])
    if r == len(rows) - 1:  # the top row: all the cap the range allows (between grid steps)
        cap = max(cap, min(req.max_cap_w, float(caps[-1])))
    return Plan(
        cap_w=cap,
        batch_limit=round(float(batches[col])),
        feasible=False,
        predicted_power_w=float(power[r, col]),
        predicted_capacity_tok_s=float(thr[r, col]),
        operating_batch=float(batches[col]),
        itl_ok=bool(row_itl_ok[r]),
    )
