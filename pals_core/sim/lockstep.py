"""A node's simulated GPUs running engine steps in lockstep (tensor/expert parallel): how long
a step takes under the power caps, at what clock and power each GPU runs it.

A step lasts as long as its slowest GPU; the others wait for it at a low draw. While no cap is
settling and every GPU is the same device under the same cap, one clock solve serves them all,
and GPUs with identical histories share one state. :class:`~pals_core.sim.engine.SimEngine` owns
the scheduling (who runs in a step); this module owns the physics of running it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pals_core.sim.clock_search import FULL_CLOCK, solve_clock_near
from pals_core.sim.gpu import SimGPU
from pals_core.sim.physics import solve_clock, wait_energy_j

StepWork = tuple[float, float, float]
"""A step's (fixed, memory, compute) seconds at full clock (``StepCoefficients.work``)."""


class LockstepGPUs:
    def __init__(self, gpus: Sequence[SimGPU]) -> None:
        self.gpus = list(gpus)
        g0 = self.gpus[0]
        self._uniform = all(
            g.power == g0.power and g.speed_factor == g0.speed_factor for g in self.gpus
        )
        # cap state: while no GPU is settling and all caps are equal, one solve serves all
        self._states_equal = self._uniform
        self._settle_until_s = -math.inf
        self._shared_target_w: float | None = None
        # the last clock solve (its step may resume after a tick boundary with the same work
        # under the same caps: the same inputs give the same solve)
        self._solved_key: tuple[float, float, float, float] | None = None
        self._solved_shared: tuple[float, float, float] = (1.0, 0.0, 0.0)
        self._solved_each: tuple[list[tuple[float, float]], float] = ([], 0.0)
        # each GPU's last decode step's clock, as its position on the bisection's grid: the
        # next decode step's solve starts its search there (its work differs little: the same
        # result, found with fewer evaluations; a prefill step's clock is anywhere)
        self._hints = [FULL_CLOCK] * len(self.gpus)
        for gpu in self.gpus:
            gpu.on_cap_change = self._on_cap_change
        self._on_cap_change()

    def _on_cap_change(self) -> None:
        self._solved_key = None
        gpus = self.gpus
        self._settle_until_s = max(g._settle_end_s for g in gpus)
        caps = {g.get_power_limit_w() for g in gpus}
        self._shared_target_w = (
            gpus[0].target_w(self._settle_until_s) if self._uniform and len(caps) == 1 else None
        )

    def settling(self, now_s: float) -> bool:
        """Whether some GPU's cap is still settling at ``now_s``."""
        return now_s < self._settle_until_s

    def idle_until(self, end_s: float) -> None:
        for gpu in self.gpus:
            gpu.commit(end_s, gpu.idle_w, 1.0)  # idle draw differs by device

    # -- one step ----------------------------------------------------------------------------
    def run_step(
        self,
        work: StepWork,
        now_s: float,
        left: float,
        target_s: float,
        decode_only: bool = False,
    ) -> tuple[float, float, bool]:
        """Run the part ``left`` (a fraction) of a step from ``now_s``, stopping at ``target_s``
        or a change of a settling cap. Returns (end time, fraction still left, whether the step
        is done); the fraction is unchanged when the step is done. ``decode_only``: the step
        has no prefill (where to start the clock solve's search: the result is the same)."""
        hints = self._hints if decode_only and left == 1.0 else None
        fixed_s, mem_s, cmp_s = work
        gpus = self.gpus
        if now_s >= self._settle_until_s:
            boundary = target_s
            shared = self._shared_target_w
        else:
            boundary = min(target_s, *(g.next_cap_change_s(now_s) for g in gpus))
            shared = None
        if shared is not None:
            g0 = gpus[0]
            key = (fixed_s, mem_s, cmp_s, shared)
            if key == self._solved_key:
                f, t_step, e = self._solved_shared
            else:
                sf = g0.speed_factor
                mem_sf, cmp_sf = mem_s * sf, cmp_s * sf
                if hints is None:
                    f, t_step, e = solve_clock(fixed_s, mem_sf, cmp_sf, g0.power, shared)
                else:
                    (f, t_step, e), hints[0] = solve_clock_near(
                        fixed_s, mem_sf, cmp_sf, g0.power, shared, hints[0]
                    )
                self._solved_key, self._solved_shared = key, (f, t_step, e)
            end_s, left, done = _until(now_s, left, t_step, boundary)
            power_w = g0.power.floor_w + e / t_step
            g0.commit(end_s, power_w, f)
            if self._states_equal:  # identical GPUs, identical history: share the result
                for gpu in gpus[1:]:
                    gpu.copy_state(g0)
            else:
                for gpu in gpus[1:]:
                    gpu.commit(end_s, power_w, f)
            return end_s, left, done
        if now_s < self._settle_until_s:  # the targets move while a cap settles
            self._solved_key = None
            solved, t_step = self._solve_each(fixed_s, mem_s, cmp_s, now_s, hints)
        else:  # settled: the targets are the caps' until the next cap change
            key = (fixed_s, mem_s, cmp_s, -1.0)  # -1: not a shared target (those are > 0)
            if key == self._solved_key:
                solved, t_step = self._solved_each
            else:
                solved, t_step = self._solve_each(fixed_s, mem_s, cmp_s, now_s, hints)
                self._solved_key, self._solved_each = key, (solved, t_step)
        end_s, left, done = _until(now_s, left, t_step, boundary)
        for gpu, (f, e) in zip(gpus, solved, strict=True):
            gpu.commit(end_s, gpu.power.floor_w + e / t_step, f)
        if len(gpus) > 1 and (not self._uniform or len(set(solved)) > 1):
            self._states_equal = False
        return end_s, left, done

    def _solve_each(
        self,
        fixed_s: float,
        mem_s: float,
        cmp_s: float,
        now: float,
        hints: list[int] | None = None,
    ) -> tuple[list[tuple[float, float]], float]:
        own = []
        t_step = 0.0
        uniform = self._uniform
        last_target_w = math.nan
        solve = (1.0, 0.0, 0.0)
        for i, gpu in enumerate(self.gpus):
            target_w = gpu.target_w(now)
            # Same device and the same target as the GPU before (a uniform node settling to
            # one cap): the same pure solve, so its result is reused.
            if not uniform or target_w != last_target_w:
                sf = gpu.speed_factor
                mem_sf, cmp_sf = mem_s * sf, cmp_s * sf
                if hints is None:
                    solve = solve_clock(fixed_s, mem_sf, cmp_sf, gpu.power, target_w)
                else:
                    solve, hints[i] = solve_clock_near(
                        fixed_s, mem_sf, cmp_sf, gpu.power, target_w, hints[i]
                    )
                last_target_w = target_w
            own.append(solve)
            t_step = max(t_step, solve[1])
        solved = [  # the slowest GPU does not wait (its wait energy would add exactly 0.0)
            (f, e + wait_energy_j(f, t_step - t, gpu.power) if t != t_step else e)
            for gpu, (f, t, e) in zip(self.gpus, own, strict=True)
        ]
        return solved, t_step

    # -- a stretch of identical decode steps at full clock ------------------------------------
    def decode_step_ends(
        self,
        now_s: float,
        work: StepWork,
        dmem_s: float,
        max_steps: int,
        target_s: float,
        arrival_s: float,
    ) -> list[float]:
        """End times of up to ``max_steps`` decode steps at full clock, each ``dmem_s`` longer
        in memory time than the one before (the context grows), paced by the slowest GPU: those
        that end by ``target_s``, up to and including the first to end at or after
        ``arrival_s``."""
        fixed_s, mem_s, cmp_s = work
        sf_max = max(g.speed_factor for g in self.gpus)
        ends: list[float] = []
        t = now_s
        step_s = fixed_s + sf_max * (mem_s + cmp_s)
        dstep_s = sf_max * dmem_s
        for _ in range(max_steps):
            if t + step_s > target_s:
                break
            t += step_s
            ends.append(t)
            step_s += dstep_s
            if t >= arrival_s:
                break
        return ends

    def full_clock_holds(self, now_s: float, work: StepWork, last_mem_s: float) -> bool:
        """Whether every GPU stays at full clock under its cap from a decode step of ``work``
        to one of ``last_mem_s`` memory time (power is monotone in between)."""
        fixed_s, mem_s, cmp_s = work
        for g in self.gpus:
            pc, sf = g.power, g.speed_factor
            budget_w = g.target_w(now_s) - pc.static_w
            for m in (mem_s, last_mem_s):
                own_s = fixed_s + sf * (m + cmp_s)
                if sf * (pc.mem_w * m + pc.comp_w * cmp_s) > budget_w * own_s:
                    return False
        return True

    def commit_decode_stretch(
        self, end_s: float, duration_s: float, mem_sum_s: float, cmp_s: float, steps: int
    ) -> None:
        """Each GPU draws the stretch's mean power at full clock until ``end_s``."""
        gpus = self.gpus
        if self._states_equal:
            g0 = gpus[0]
            pc = g0.power
            energy_j = g0.speed_factor * (pc.mem_w * mem_sum_s + pc.comp_w * cmp_s * steps)
            g0.commit(end_s, pc.static_w + energy_j / duration_s, 1.0)
            for gpu in gpus[1:]:
                gpu.copy_state(g0)
            return
        for g in gpus:
            pc = g.power
            energy_j = g.speed_factor * (pc.mem_w * mem_sum_s + pc.comp_w * cmp_s * steps)
            g.commit(end_s, pc.static_w + energy_j / duration_s, 1.0)


def _until(
    now_s: float, left: float, t_step: float, boundary_s: float
) -> tuple[float, float, bool]:
    """Where a step of full length ``t_step`` with ``left`` of it to run stops: at its end, or
    at ``boundary_s`` with part of it still left."""
    end_s = now_s + left * t_step
    if end_s <= boundary_s:
        return end_s, left, True
    return boundary_s, left - (boundary_s - now_s) / t_step, False
