"""The node's allocation trajectory and the budget the controller gets from it. Pure: no clock,
no I/O; every call takes the wall time (UTC seconds) it is about.

The gateway sends a piecewise-constant trajectory (``[{start, end, power_w}, ...]``, UTC).
:func:`parse_trajectory` refuses a malformed or out-of-range one, naming the field, so the caller
keeps the last good one. :class:`BudgetFollower` turns the trajectory into the budget handed to
the controller each period:

- **Look-ahead.** The budget at ``t`` is the minimum allocation over ``[t, t + lead_s]``: a fall
  known ahead reaches the controller ``lead_s`` early, so the caps are down (and measured power
  is under the new budget) when it starts. ``lead_s`` is the controller's settling (a period plus
  the caps' settling time; ``PALS_BUDGET_LEAD_S``).
- **No limit.** A segment without a power (``null``) or at or above the node's maximum means
  unconstrained: the budget is the node's maximum (the sum of its GPUs' maximum caps), where the
  controller runs at its efficiency optimum for the demand.
- **Infeasible.** A budget under the node's minimum (the sum of minimum caps) runs at the minimum
  and is reported ``infeasible``.
- **Gateway gone.** The known trajectory is followed as long as it lasts. Past its end, or once
  no contact has been made for ``lease_s``, the budget falls to ``failsafe_w``, never above the
  last budget in force (``failsafe``).
- **Back.** When the trajectory governs again after a failsafe, the budget rises from the
  failsafe level at ``resume_ramp_w_per_s`` (falls are never delayed): no jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pals_core.errors import ConfigurationError, PalsError

MAX_SEGMENTS = 10_000
MAX_POWER_W = 1e7


class TrajectoryError(PalsError, ValueError):
    """A trajectory from the gateway is malformed or out of range; ``field`` names the part."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class Segment:
    start_s: float
    """UTC seconds since the epoch."""
    end_s: float
    power_w: float | None
    """None: no limit."""


@dataclass(frozen=True, slots=True)
class Trajectory:
    version_id: int
    segments: tuple[Segment, ...]

    @property
    def end_s(self) -> float:
        return self.segments[-1].end_s if self.segments else -math.inf


def _timestamp(value: Any, field: str) -> float:
    if not isinstance(value, str):
        raise TrajectoryError(field, f"must be an ISO 8601 time string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise TrajectoryError(field, f"is not an ISO 8601 time: {value!r}") from err
    if parsed.tzinfo is None:
        raise TrajectoryError(field, f"must carry a UTC offset, got {value!r}")
    return parsed.timestamp()


def _power(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TrajectoryError(field, f"must be a number of watts or null, got {value!r}")
    power = float(value)
    if math.isinf(power) and power > 0:
        return None
    if not (math.isfinite(power) and 0 <= power <= MAX_POWER_W):
        raise TrajectoryError(field, f"must be within [0, {MAX_POWER_W:g}] W, got {value!r}")
    return power


def parse_trajectory(data: Any, node_id: int) -> Trajectory:
    """Validate the gateway's trajectory JSON (already decoded) for node ``node_id``."""
    if not isinstance(data, dict):
        raise TrajectoryError("trajectory", "must be a JSON object")
    if data.get("node_id") != node_id:
        raise TrajectoryError(
            "node_id", f"must be this node's id {node_id}, got {data.get('node_id')!r}"
        )
    version = data.get("version_id")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise TrajectoryError("version_id", f"must be an integer >= 1, got {version!r}")
    raw = data.get("segments")
    if not isinstance(raw, list) or len(raw) > MAX_SEGMENTS:
        raise TrajectoryError("segments", f"must be a list of at most {MAX_SEGMENTS} segments")
    segments: list[Segment] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise TrajectoryError(f"segments.{i}", "must be an object {start, end, power_w}")
        start = _timestamp(item.get("start"), f"segments.{i}.start")
        end = _timestamp(item.get("end"), f"segments.{i}.end")
        if not end > start:
            raise TrajectoryError(f"segments.{i}.end", "must be after start")
        if segments and start < segments[-1].end_s - 1e-6:
            raise TrajectoryError(f"segments.{i}.start", "overlaps the previous segment")
        segments.append(Segment(start, end, _power(item.get("power_w"), f"segments.{i}.power_w")))
    return Trajectory(version, tuple(segments))


class BudgetSource(StrEnum):
    TRAJECTORY = "trajectory"
    UNCONSTRAINED = "unconstrained"
    FAILSAFE = "failsafe"
    NONE = "none"
    """No trajectory received yet and the lease has not run out: run unconstrained."""


@dataclass(frozen=True, slots=True)
class Budget:
    power_w: float
    """The GPU power budget handed to the controller (within [node min, node max])."""
    allocation_w: float | None
    """The allocation in force now (None: no limit or unknown)."""
    source: BudgetSource
    infeasible: bool
    """The allocation is under the node's minimum: the node runs at its minimum."""


@dataclass(frozen=True, slots=True)
class FollowerConfig:
    min_power_w: float
    max_power_w: float
    lead_s: float = 1.0
    lease_s: float = 60.0
    failsafe_w: float | None = None
    """None: the node's minimum power."""
    resume_ramp_w_per_s: float | None = None
    """None: (max - min) / 20 per second."""

    def __post_init__(self) -> None:
        if not (0 < self.min_power_w <= self.max_power_w):
            raise ConfigurationError(
                f"min_power_w and max_power_w must satisfy 0 < min <= max, got "
                f"{self.min_power_w}, {self.max_power_w}"
            )
        if not (self.lead_s >= 0 and self.lease_s > 0):
            raise ConfigurationError("lead_s must be >= 0 and lease_s > 0")
        if self.failsafe_w is not None and not self.failsafe_w >= 0:
            raise ConfigurationError(f"failsafe_w must be >= 0, got {self.failsafe_w}")

    @property
    def ramp_w_per_s(self) -> float:
        if self.resume_ramp_w_per_s is not None:
            return self.resume_ramp_w_per_s
        return max(1.0, (self.max_power_w - self.min_power_w) / 20.0)


def min_allocation(trajectory: Trajectory, t0_s: float, t1_s: float) -> tuple[bool, float | None]:
    """``(covered, lowest)`` over ``[t0, t1]``: ``covered`` is False when part of the window lies
    outside every segment; ``lowest`` is the smallest power (None: no limit anywhere in it)."""
    lowest: float | None = None
    covered_until = t0_s
    for seg in trajectory.segments:
        if seg.end_s <= t0_s or seg.start_s > t1_s:
            continue
        if seg.start_s > covered_until + 1e-6:
            return False, lowest
        covered_until = max(covered_until, seg.end_s)
        if seg.power_w is not None:
            lowest = seg.power_w if lowest is None else min(lowest, seg.power_w)
    return covered_until >= t1_s, lowest


class BudgetFollower:
    """The trajectory, the last contact, and the budget at any time (see the module doc)."""

    def __init__(self, config: FollowerConfig) -> None:
        self.config = config
        self.trajectory: Trajectory | None = None
        self.last_contact_s = -math.inf
        self._started_s: float | None = None
        self._last: Budget | None = None
        self._last_s = math.nan
        self._ramping = False

    def accept(self, trajectory: Trajectory, now_s: float, *, any_version: bool = False) -> bool:
        """Take a newer version (an older one is ignored: False), or any with ``any_version``
        (the first of a new connection: a gateway whose database was rebuilt counts from 1)."""
        self.contact(now_s)
        held = self.trajectory
        if held is not None and trajectory.version_id < held.version_id and not any_version:
            return False
        self.trajectory = trajectory
        return True

    def contact(self, now_s: float) -> None:
        """The gateway answered (stream event, heartbeat or any request)."""
        self.last_contact_s = max(self.last_contact_s, now_s)
        if self._started_s is None:
            self._started_s = now_s

    def budget(self, now_s: float) -> Budget:
        """The budget at ``now_s``; call once per control period, in time order."""
        cfg = self.config
        if self._started_s is None:
            self._started_s = now_s
        lease_over = now_s - max(self.last_contact_s, self._started_s) > cfg.lease_s
        traj = self.trajectory
        covered, lowest = (
            (False, None) if traj is None else min_allocation(traj, now_s, now_s + cfg.lead_s)
        )
        if traj is None and not lease_over:
            wanted = Budget(cfg.max_power_w, None, BudgetSource.NONE, False)
        elif lease_over or not covered:
            wanted = self._failsafe()
        elif lowest is None or lowest >= cfg.max_power_w:
            wanted = Budget(cfg.max_power_w, None, BudgetSource.UNCONSTRAINED, False)
        else:
            infeasible = lowest < cfg.min_power_w
            wanted = Budget(
                max(lowest, cfg.min_power_w), lowest, BudgetSource.TRAJECTORY, infeasible
            )
        budget = self._ramped(wanted, now_s)
        self._last, self._last_s = budget, now_s
        return budget

    def _failsafe(self) -> Budget:
        cfg = self.config
        level = cfg.min_power_w if cfg.failsafe_w is None else cfg.failsafe_w
        if self._last is not None:
            level = min(level, self._last.power_w)
        infeasible = level < cfg.min_power_w
        return Budget(max(level, cfg.min_power_w), None, BudgetSource.FAILSAFE, infeasible)

    def _ramped(self, wanted: Budget, now_s: float) -> Budget:
        """After a failsafe, rise towards ``wanted`` at the ramp rate (a fall is never delayed)."""
        last = self._last
        if wanted.source is BudgetSource.FAILSAFE:
            self._ramping = True
            return wanted
        if not self._ramping or last is None or wanted.power_w <= last.power_w:
            self._ramping = False
            return wanted
        dt_s = min(1.0, max(0.0, now_s - self._last_s))  # a stalled caller makes no jump
        ceiling = last.power_w + self.config.ramp_w_per_s * dt_s
        if wanted.power_w <= ceiling:
            self._ramping = False
            return wanted
        return Budget(ceiling, wanted.allocation_w, wanted.source, wanted.infeasible)
