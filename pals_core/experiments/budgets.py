"""Power-budget trajectories, as fractions of the node's maximum power (num_gpus x max cap).

A :class:`BudgetTrace` is piecewise linear in time; a step is two knots at the same instant, so
one type holds demand-response steps, ramps and a regulation signal alike. The dynamic hour is
built from a seed, so every controller of a scenario sees the same trajectory.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass

from pals_core.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class BudgetTrace:
    """Knots ``(time_s, frac)``; linear between knots, a step where two knots share a time.
    Before the first knot the first value holds, after the last the last value holds."""

    times_s: tuple[float, ...]
    fracs: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.times_s) != len(self.fracs) or not self.times_s:
            raise ConfigurationError("a budget trace needs as many fracs as times, at least one")
        if any(b < a for a, b in zip(self.times_s, self.times_s[1:], strict=False)):
            raise ConfigurationError("budget trace times must be non-decreasing")
        if any(not 0.0 < f <= 1.5 for f in self.fracs):
            raise ConfigurationError("budget fractions must be within (0, 1.5]")

    @classmethod
    def constant(cls, frac: float) -> BudgetTrace:
        return cls((0.0,), (frac,))

    def frac_at(self, time_s: float) -> float:
        # The last knot at or before time_s (so after a step its new value holds).
        i = bisect.bisect_right(self.times_s, time_s) - 1
        if i < 0:
            return self.fracs[0]
        if i == len(self.times_s) - 1:
            return self.fracs[-1]
        t0, t1 = self.times_s[i], self.times_s[i + 1]
        f0, f1 = self.fracs[i], self.fracs[i + 1]
        return f0 + (f1 - f0) * (time_s - t0) / (t1 - t0)

    @property
    def min_frac(self) -> float:
        return min(self.fracs)


def _steps(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Knots of a staircase: hold each value until the next point's time."""
    knots: list[tuple[float, float]] = []
    for (t, f), nxt in zip(points, [*points[1:], None], strict=True):
        knots.append((t, f))
        if nxt is not None:
            knots.append((nxt[0], f))
    return knots


def dynamic_hour(
    seed: int,
    *,
    duration_s: float = 3600.0,
    regulation_band_frac: float = 0.10,
    regulation_base_frac: float = 0.75,
) -> BudgetTrace:
    """The dynamic scenario's hour, in four parts (times scale with ``duration_s``):

    1. demand-response steps 100 % -> 70 % -> 55 % -> 85 % (0 to 45 % of the hour);
    2. ramps: 85 % -> 60 % over 1/12 h, hold, then 60 % -> 95 % over 1/12 h;
    3. a regulation-like signal: ``base +- band`` following a bounded random walk whose value
       changes every 1 to 3 s (uniform: a 2-s cadence on average, as a fast regulation signal
       such as PJM's RegD), each move N(0, band / 3) (a band-limited walk);
    4. back to 100 % (the event ends) for the last 5 %.
    """
    d = duration_s
    rng = random.Random(seed * 7919 + 17)
    knots = _steps([(0.0, 1.0), (0.10 * d, 0.70), (0.20 * d, 0.55), (0.30 * d, 0.85)])
    knots += [(0.45 * d, 0.85), (0.5333 * d, 0.60), (0.5833 * d, 0.60), (0.6667 * d, 0.95)]
    t, x = 0.70 * d, 0.0
    knots.append((t, 0.95))
    knots.append((t, regulation_base_frac))
    end = 0.95 * d
    while True:
        t_next = t + rng.uniform(1.0, 3.0)
        if t_next >= end:
            break
        knots.append((t_next, regulation_base_frac + x))
        x = max(-regulation_band_frac, min(regulation_band_frac, x + rng.gauss(0.0, 0.033)))
        knots.append((t_next, regulation_base_frac + x))
        t = t_next
    knots.append((end, regulation_base_frac + x))
    knots.append((end, 1.0))
    return BudgetTrace(tuple(k[0] for k in knots), tuple(k[1] for k in knots))
