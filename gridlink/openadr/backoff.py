"""Exponential backoff with full jitter, pure: how long to wait after ``failures`` failures."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class Backoff:
    """``delay = uniform(0.5, 1) * min(max_s, base_s * 2**(failures - 1))``; a success resets.
    ``ready(now)`` says whether the next attempt may run."""

    base_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    next_at: datetime | None = None

    def ready(self, now: datetime) -> bool:
        return self.next_at is None or now >= self.next_at

    def failed(self, now: datetime) -> float:
        self.failures += 1
        ceiling = min(self.max_s, self.base_s * 2 ** min(self.failures - 1, 30))
        delay_s = ceiling * self.rng.uniform(0.5, 1.0)
        self.next_at = now + timedelta(seconds=delay_s)
        return delay_s

    def succeeded(self) -> None:
        self.failures, self.next_at = 0, None
