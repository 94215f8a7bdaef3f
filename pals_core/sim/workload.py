"""Request arrival processes for the simulated engine.

A workload is a stream of :class:`Arrival` in time order. The engine asks ``peek_next_s()`` for
the next arrival time and ``pop()`` when it comes due; a saturating workload (the calibration
benchmarks' ``request_rate=inf``) instead keeps the engine's queue full. Request lengths are drawn
from :mod:`pals_core.sim.lengths`; a recorded trace is replayed by :mod:`pals_core.sim.trace`.
Random numbers are drawn in blocks to keep the per-request cost tiny.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pals_core.errors import ConfigurationError
from pals_core.sim.lengths import LogNormalLengths, RequestLengths, chat_lengths

__all__ = [
    "Arrival",
    "BurstyWorkload",
    "DiurnalWorkload",
    "LogNormalLengths",
    "PoissonWorkload",
    "RequestLengths",
    "SaturatingWorkload",
    "Workload",
    "chat_lengths",
]

_BLOCK = 512


class _TimeSource(Protocol):
    def now_s(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Arrival:
    arrival_s: float
    prompt_tokens: int
    output_tokens: int


class Workload(abc.ABC):
    """An arrival process. ``bind`` is called once by the node that owns it."""

    saturating: bool = False

    def __init__(self, lengths: RequestLengths | None = None) -> None:
        self._lengths = lengths
        self._rng: np.random.Generator | None = None
        self._clock: _TimeSource | None = None
        self._start_s = 0.0
        self._prompts: Iterator[int] = iter(())
        self._outputs: Iterator[int] = iter(())

    def bind(self, rng: np.random.Generator, clock: _TimeSource, default: RequestLengths) -> None:
        if self._rng is not None:
            raise ConfigurationError("a workload can drive only one engine; make a new one")
        self._rng = rng
        self._clock = clock
        self._start_s = clock.now_s()
        if self._lengths is None:
            self._lengths = default
        self._prompts = self._draws(self._lengths.prompt)
        self._outputs = self._draws(self._lengths.output)
        self._on_bind()

    def _on_bind(self) -> None:  # noqa: B027 (optional hook)
        """Hook: draw the first arrival."""

    def _draws(self, dist: LogNormalLengths) -> Iterator[int]:
        assert self._rng is not None
        while True:
            yield from dist.sample(self._rng, _BLOCK).tolist()

    def _make(self, arrival_s: float) -> Arrival:
        return Arrival(arrival_s, next(self._prompts), next(self._outputs))

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            raise ConfigurationError("workload is not bound to a node yet")
        return self._rng

    def _now_s(self) -> float:
        return self._clock.now_s() if self._clock is not None else 0.0

    @abc.abstractmethod
    def peek_next_s(self) -> float:
        """Time of the next arrival (``math.inf`` if none)."""

    @abc.abstractmethod
    def pop(self) -> Arrival:
        """Take the next arrival."""

    def set_rate(self, rate_req_s: float) -> None:
        raise ConfigurationError(f"{type(self).__name__} has no rate to change")

    @property
    def rate_req_s(self) -> float:
        raise ConfigurationError(f"{type(self).__name__} has no rate")


def _check_rate(rate_req_s: float) -> float:
    if not (rate_req_s >= 0 and math.isfinite(rate_req_s)):
        raise ConfigurationError(f"rate_req_s must be a finite number >= 0, got {rate_req_s}")
    return float(rate_req_s)


class _ExpDraws:
    """Unit-mean exponential draws in blocks."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []

    def __call__(self) -> float:
        if not self._buf:
            self._buf = self._rng.exponential(1.0, _BLOCK).tolist()
        return self._buf.pop()


class _UniformDraws:
    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []

    def __call__(self) -> float:
        if not self._buf:
            self._buf = self._rng.random(_BLOCK).tolist()
        return self._buf.pop()


class PoissonWorkload(Workload):
    """Poisson arrivals at ``rate_req_s``; :meth:`set_rate` takes effect at once (memoryless)."""

    def __init__(self, rate_req_s: float, lengths: RequestLengths | None = None) -> None:
        super().__init__(lengths)
        self._rate = _check_rate(rate_req_s)
        self._next_s = math.inf

    def _on_bind(self) -> None:
        self._exp = _ExpDraws(self.rng)
        self._schedule(self._start_s)

    def _schedule(self, from_s: float) -> None:
        self._next_s = from_s + self._exp() / self._rate if self._rate > 0 else math.inf

    def peek_next_s(self) -> float:
        return self._next_s

    def pop(self) -> Arrival:
        arrival = self._make(self._next_s)
        self._schedule(self._next_s)
        return arrival

    def set_rate(self, rate_req_s: float) -> None:
        self._rate = _check_rate(rate_req_s)
        if self._rng is not None:
            self._schedule(max(self._now_s(), self._start_s))

    @property
    def rate_req_s(self) -> float:
        return self._rate


class _ThinnedWorkload(Workload):
    """A time-varying Poisson process by thinning: candidates at the peak rate, each kept with
    probability rate(t) / peak."""

    def __init__(self, rate_req_s: float, lengths: RequestLengths | None) -> None:
        super().__init__(lengths)
        self._rate = _check_rate(rate_req_s)
        self._next_s = math.inf

    @abc.abstractmethod
    def _rate_at(self, t_s: float) -> float: ...

    @abc.abstractmethod
    def _peak_rate(self) -> float: ...

    def _on_bind(self) -> None:
        self._exp = _ExpDraws(self.rng)
        self._uni = _UniformDraws(self.rng)
        self._advance(self._start_s)

    def _advance(self, from_s: float) -> None:
        peak = self._peak_rate()
        t = from_s
        while peak > 0:
            t += self._exp() / peak
            if self._uni() * peak <= self._rate_at(t):
                self._next_s = t
                return
        self._next_s = math.inf

    def peek_next_s(self) -> float:
        return self._next_s

    def pop(self) -> Arrival:
        arrival = self._make(self._next_s)
        self._advance(self._next_s)
        return arrival

    def set_rate(self, rate_req_s: float) -> None:
        self._rate = _check_rate(rate_req_s)
        if self._rng is not None:
            self._advance(max(self._now_s(), self._start_s))

    @property
    def rate_req_s(self) -> float:
        return self._rate


class BurstyWorkload(_ThinnedWorkload):
    """On/off bursts: ``burst_multiplier`` times the base rate for ``burst_s`` out of every
    ``period_s`` (deterministic phase, so runs are comparable). ``rate_req_s`` is the base rate."""

    def __init__(
        self,
        rate_req_s: float,
        burst_multiplier: float = 3.0,
        burst_s: float = 20.0,
        period_s: float = 120.0,
        lengths: RequestLengths | None = None,
    ) -> None:
        if not burst_multiplier >= 1:
            raise ConfigurationError(f"burst_multiplier must be >= 1, got {burst_multiplier}")
        if not 0 < burst_s <= period_s:
            raise ConfigurationError("need 0 < burst_s <= period_s")
        super().__init__(rate_req_s, lengths)
        self.burst_multiplier = burst_multiplier
        self.burst_s = burst_s
        self.period_s = period_s

    def _rate_at(self, t_s: float) -> float:
        in_burst = (t_s - self._start_s) % self.period_s >= self.period_s - self.burst_s
        return self._rate * (self.burst_multiplier if in_burst else 1.0)

    def _peak_rate(self) -> float:
        return self._rate * self.burst_multiplier


class DiurnalWorkload(_ThinnedWorkload):
    """A daily cycle: ``rate * (1 + amplitude * sin(2 pi (t - peak_s) / period_s + pi/2))``,
    peaking at ``peak_s`` after the start. ``rate_req_s`` is the mean rate."""

    def __init__(
        self,
        rate_req_s: float,
        amplitude: float = 0.5,
        period_s: float = 86400.0,
        peak_s: float = 14 * 3600.0,
        lengths: RequestLengths | None = None,
    ) -> None:
        if not 0 <= amplitude <= 1:
            raise ConfigurationError(f"amplitude must be within [0, 1], got {amplitude}")
        if not period_s > 0:
            raise ConfigurationError(f"period_s must be > 0, got {period_s}")
        super().__init__(rate_req_s, lengths)
        self.amplitude = amplitude
        self.period_s = period_s
        self.peak_s = peak_s

    def _rate_at(self, t_s: float) -> float:
        phase = 2 * math.pi * (t_s - self._start_s - self.peak_s) / self.period_s
        return self._rate * (1 + self.amplitude * math.cos(phase))

    def _peak_rate(self) -> float:
        return self._rate * (1 + self.amplitude)


class SaturatingWorkload(Workload):
    """``request_rate=inf``: the queue never runs dry, so concurrency is bounded only by the
    batch limit and the KV cache (how the calibration benchmarks load the server)."""

    saturating = True

    def peek_next_s(self) -> float:
        return -math.inf

    def pop(self) -> Arrival:
        return self._make(self._now_s())
