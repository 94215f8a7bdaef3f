"""The clock solve from a hint: :func:`~pals_core.sim.physics.solve_clock`'s result, bit for bit,
with two or three evaluations of the step's power instead of the bisection's fourteen when the
answer is near the last one (consecutive steps of a node under one cap differ little).

The bisection can only return one of a fixed, finite set of clocks: the lowest clock ``lo`` and
the midpoints it may visit from ``[lo, 1]``, computed as it computes them (:func:`clock_grid`).
Over that set, sorted, it returns the highest clock whose step fits the power budget: the
power of a step rises with the clock, so "fits" holds up to one point of the set and not above
it, and a binary search for that point (the bisection is one, over the tree of midpoints) ends
there whatever its path. :func:`solve_clock_near` finds the same point by searching outwards
from the previous answer's position, evaluates each clock with the bisection's own arithmetic
(same operations, same order: same bits) and returns that position for the next solve.
"""

from __future__ import annotations

import bisect
import functools

from pals_core.sim.physics import _BISECT_ITERATIONS, PowerCoefficients, solve_clock

Solve = tuple[float, float, float]
"""``(clock fraction, step time s, energy above the floor J)``, as :func:`solve_clock`."""
FULL_CLOCK = -1
"""The position returned for a step at full clock (or a stalled one): no grid point."""


@functools.cache
def clock_grid(lo: float, iterations: int = _BISECT_ITERATIONS) -> tuple[float, ...]:
    """Every clock the bisection from ``[lo, 1]`` can return, ascending: ``lo`` and each
    midpoint of its tree (``2**iterations`` values), as the bisection computes them."""
    grid: list[float] = [lo]

    def midpoints(a: float, b: float, depth: int) -> None:  # in order: left, middle, right
        if depth == 0:
            return
        m = 0.5 * (a + b)
        midpoints(a, m, depth - 1)
        grid.append(m)
        midpoints(m, b, depth - 1)

    midpoints(lo, 1.0, iterations)
    return tuple(grid)


def solve_clock_near(
    fixed_s: float,
    mem_s: float,
    cmp_s: float,
    pc: PowerCoefficients,
    cap_w: float,
    hint: int,
) -> tuple[Solve, int]:
    """:func:`solve_clock`'s result and its position in :func:`clock_grid` (``FULL_CLOCK``
    when it is no grid point), searching from position ``hint`` (the previous answer's; any
    int is accepted, a wrong one costs only time)."""
    budget_w = cap_w - pc.idle_w
    t1 = fixed_s + mem_s + cmp_s
    e1 = pc.busy_w * t1 + pc.mem_w * mem_s + pc.comp_w * cmp_s
    if e1 <= budget_w * t1:  # full clock (as solve_clock)
        return (1.0, t1, e1), FULL_CLOCK
    if hint == FULL_CLOCK:  # no useful hint
        solved = solve_clock(fixed_s, mem_s, cmp_s, pc, cap_w)
        return solved, _position(solved[0], pc.min_clock_frac)
    grid = clock_grid(pc.min_clock_frac)
    dvfs = pc.dvfs
    v_floor, f_v, f_knee = dvfs.v_floor, dvfs.f_v, dvfs.f_knee
    v_rise, f_span = 1.0 - v_floor, 1.0 - f_v
    busy_w, mem_sm_w, hbm_w, comp_w = pc.busy_w, pc.mem_sm_w, pc.hbm_w, pc.comp_w
    # Fits at ``good``, not at ``bad`` (``len(grid)``: full clock, checked above; 0: the lowest
    # clock, whose figures solve_clock gives). Gallop from the hint while the answer lies on
    # the same side, then halve the bracket.
    good, bad = 0, len(grid)
    probe = min(max(hint, 1), bad - 1)
    step, galloping = 1, True
    best = (1.0, t1, e1)
    while bad - good > 1:
        f = grid[probe]  # the bisection's arithmetic, written out as there: the same bits
        v = v_floor if f <= f_v else v_floor + v_rise * (f - f_v) / f_span
        t = fixed_s + mem_s * (f_knee / f if f < f_knee else 1.0) + cmp_s / f
        energy = busy_w * (v * v * f) * t + (mem_sm_w * v * v + hbm_w) * mem_s
        energy = energy + comp_w * v * v * cmp_s
        if energy <= budget_w * t:
            good, best = probe, (f, t, energy)
            probe += step
        else:
            bad = probe
            probe -= step
        if galloping and good < probe < bad:
            step *= 2
        else:
            galloping = False
            probe = (good + bad) // 2
    if good == 0:  # the lowest clock, or a step that stalls there: the plain solve
        solved = solve_clock(fixed_s, mem_s, cmp_s, pc, cap_w)
        return solved, _position(solved[0], pc.min_clock_frac)
    return best, good


def _position(f: float, lo: float) -> int:
    """``f``'s position in ``clock_grid(lo)``, or ``FULL_CLOCK``."""
    if f >= 1.0:
        return FULL_CLOCK
    grid = clock_grid(lo)
    i = bisect.bisect_left(grid, f)
    return i if i < len(grid) and grid[i] == f else FULL_CLOCK
