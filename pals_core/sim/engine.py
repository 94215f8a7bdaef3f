"""A simulated vLLM engine: continuous batching with chunked prefill, KV-cache limits and
preemption, stepping GPUs whose clocks obey their power caps.

Each step (as vLLM V1's scheduler): every running decode sequence gets one token; partial
prefills continue; then waiting requests are admitted FCFS while fewer than ``max_num_seqs`` run,
the step's token budget (``max_num_batched_tokens``) lasts and the KV cache has room, their
prompts chunked to fit the budget. A request emits its first token at the end of the step that
completes its prompt, then one token per step. When decode growth would overflow the KV cache
the most recently started sequence is preempted and later recomputed (vLLM's recompute mode).

Cost: per step O(log n) (a heap keyed on the global step index at which each sequence finishes);
no per-request work except for externally submitted requests, which record their token times.
The context sum needed for KV reads grows by the number of decoders each step.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Sequence

from pals_core.engine.base import (
    DEFAULT_MAX_NUM_SEQS,
    ITL_BUCKETS_S,
    MAX_BATCH_LIMIT,
    TTFT_BUCKETS_S,
    EngineMetrics,
    Histogram,
    ServingEngine,
)
from pals_core.errors import ConfigurationError
from pals_core.sim.engine_metrics import EngineStats, Hist, RequestTimes
from pals_core.sim.gpu import SimGPU
from pals_core.sim.lockstep import LockstepGPUs, StepWork
from pals_core.sim.physics import StepCoefficients
from pals_core.sim.request import SimRequest
from pals_core.sim.workload import Arrival, Workload


class SimEngine(ServingEngine):
    def __init__(
        self,
        gpus: Sequence[SimGPU],
        coefficients: StepCoefficients,
        workload: Workload,
        kv_capacity_tokens: int,
        batch_limit: int = DEFAULT_MAX_NUM_SEQS,
        max_num_batched_tokens: int = 8192,
        start_s: float = 0.0,
        lock: threading.RLock | None = None,
    ) -> None:
        if not max_num_batched_tokens >= 1:
            raise ConfigurationError("max_num_batched_tokens must be >= 1")
        self._lock = lock if lock is not None else threading.RLock()
        self._coef = coefficients
        self._workload = workload
        self._kv_capacity = int(kv_capacity_tokens)
        self._max_batched = int(max_num_batched_tokens)
        self._limit = 0
        self.set_batch_limit(batch_limit)
        self._t = start_s
        self._step = 0
        self._ids = itertools.count()
        self._waiting: deque[SimRequest] = deque()
        self._prefilling: list[SimRequest] = []
        self._decoding: dict[int, SimRequest] = {}
        self._tracked: dict[int, SimRequest] = {}
        self._heap: list[tuple[int, int, int, SimRequest]] = []
        self._ctx_sum = 0
        self._kv_used = 0
        self._last_step_end_s = start_s
        # in-flight step: (n_dec, ctx, n_pf, running, finishing prefills), fraction left
        self._inflight: tuple[int, int, int, int, list[SimRequest]] | None = None
        self._left = 0.0
        self._work: StepWork = (0.0, 0.0, 0.0)
        """The in-flight step's work (``StepCoefficients.work``)."""
        # counters
        self._gen_tokens = 0
        self._prompt_tokens = 0
        self._success = 0
        self._arrived = 0
        self._prompt_arrived = 0
        self._preemptions = 0
        self._busy_s = 0.0
        self._running_seq_s = 0.0
        self._ttft = Hist(TTFT_BUCKETS_S)
        self._itl = Hist(ITL_BUCKETS_S)
        self._request_times = RequestTimes()
        self._log: list[tuple[float, int]] | None = None
        self._gpus = LockstepGPUs(gpus)

    # -- ServingEngine ---------------------------------------------------------------------
    def get_batch_limit(self) -> int:
        return self._limit

    def set_batch_limit(self, max_num_seqs: int) -> None:
        if not (isinstance(max_num_seqs, int) and 1 <= max_num_seqs <= MAX_BATCH_LIMIT):
            raise ConfigurationError(
                f"batch limit (max_num_seqs) must be an integer within [1, {MAX_BATCH_LIMIT}], "
                f"got {max_num_seqs!r}"
            )
        self._limit = max_num_seqs

    def metrics(self) -> EngineMetrics:
        return EngineMetrics(
            timestamp_s=self._t,
            generation_tokens_total=self._gen_tokens,
            prompt_tokens_total=self._prompt_tokens,
            num_requests_running=len(self._decoding) + len(self._prefilling),
            num_requests_waiting=len(self._waiting),
            request_success_total=self._success,
            time_to_first_token_seconds=self._ttft.snapshot(),
            inter_token_latency_seconds=self._itl.snapshot(),
            kv_cache_usage_perc=min(1.0, self._kv_used / self._kv_capacity),
            requests_arrived_total=self._arrived,
            prompt_tokens_arrived_total=self._prompt_arrived,
        )

    # -- extras ----------------------------------------------------------------------------
    @property
    def workload(self) -> Workload:
        return self._workload

    @property
    def kv_used_tokens(self) -> int:
        return self._kv_used

    @property
    def kv_capacity_tokens(self) -> int:
        return self._kv_capacity

    def request_histograms(self) -> dict[str, Histogram]:
        """vLLM's per-request latency histograms (e2e, queue, prefill, decode), by metric name."""
        return self._request_times.snapshot()

    def stats(self) -> EngineStats:
        return EngineStats(
            self._t, self._busy_s, self._step, self._running_seq_s, self._preemptions
        )

    def start_step_log(self) -> None:
        """Record (duration, decoders) of every step from now on (calibration only)."""
        self._log = []

    def take_step_log(self) -> list[tuple[float, int]]:
        log, self._log = self._log or [], None
        return log

    def submit(self, prompt_tokens: int, output_tokens: int) -> SimRequest:
        """Queue an external request now; the returned object records its token times."""
        for name, value in (("prompt_tokens", prompt_tokens), ("output_tokens", output_tokens)):
            if not (isinstance(value, int) and value >= 1):
                raise ConfigurationError(f"{name} must be an integer >= 1, got {value!r}")
        if prompt_tokens > self._kv_capacity:
            raise ConfigurationError(
                f"prompt_tokens ({prompt_tokens}) exceeds the KV cache ({self._kv_capacity})"
            )
        with self._lock:  # the clock may be advancing on another thread (RealTimePacer)
            req = SimRequest(next(self._ids), self._t, prompt_tokens, output_tokens, tracked=True)
            self._enqueue(req)
        return req

    # -- simulation ------------------------------------------------------------------------
    def advance_to(self, target_s: float) -> None:
        while self._t < target_s:
            if self._inflight is None and not self._start_step():
                next_s = min(target_s, self._workload.peek_next_s())
                if next_s <= self._t:  # nothing admissible now: wait for the caller
                    next_s = target_s
                self._gpus.idle_until(next_s)
                self._t = next_s
                continue
            if not self._jump_decode_steps(target_s):
                self._run_step(target_s)

    def _enqueue(self, req: SimRequest) -> None:
        self._waiting.append(req)
        self._arrived += 1
        self._prompt_arrived += req.prompt_tokens

    def _pull_arrivals(self) -> None:
        wl = self._workload
        if wl.saturating:
            while len(self._waiting) < self._limit:
                a = wl.pop()
                self._enqueue(SimRequest(next(self._ids), a.arrival_s, *_lengths(a), False))
            return
        now = self._t
        while wl.peek_next_s() <= now:
            a = wl.pop()
            self._enqueue(SimRequest(next(self._ids), a.arrival_s, *_lengths(a), False))

    def _start_step(self) -> bool:
        """Schedule the next step at ``self._t``; False when there is nothing to run."""
        self._pull_arrivals()
        decoding = self._decoding
        cap = self._kv_capacity
        while decoding and self._kv_used + len(decoding) > cap:
            self._preempt_last()
        n_dec = len(decoding)
        budget = self._max_batched - n_dec
        kv_free = cap - self._kv_used - n_dec
        n_pf = 0
        finishing: list[SimRequest] = []
        for r in self._prefilling:
            if budget <= 0 or kv_free <= 0:
                break
            c = min(r._pf_left, budget, kv_free)
            r._pf_left -= c
            budget -= c
            kv_free -= c
            n_pf += c
            if r._pf_left == 0:
                finishing.append(r)
        running = n_dec + len(self._prefilling)
        waiting = self._waiting
        while waiting and running < self._limit and budget > 0:
            r = waiting[0]
            c = min(r._pf_left, budget)
            if c > kv_free:
                break
            waiting.popleft()
            if r.scheduled_s is None:
                r.scheduled_s = self._t
                self._request_times.queued(r)
            self._prefilling.append(r)
            running += 1
            r._pf_left -= c
            budget -= c
            kv_free -= c
            n_pf += c
            if r._pf_left == 0:
                finishing.append(r)
        if n_dec == 0 and n_pf == 0:
            if self._prefilling and kv_free <= 0:
                # partial prefills filled the cache: give the latest one's blocks back
                r = self._prefilling.pop()
                self._kv_used -= r.prompt_tokens + r._done - r._pf_left
                r._pf_left = r.prompt_tokens + r._done
                self._waiting.appendleft(r)
                self._preemptions += 1
                return self._start_step()
            return False
        self._kv_used += n_pf
        self._inflight = (n_dec, self._ctx_sum, n_pf, running, finishing)
        self._work = self._coef.work(n_dec, self._ctx_sum, n_pf)
        self._left = 1.0
        return True

    def _run_step(self, target_s: float) -> None:
        assert self._inflight is not None
        _, _, n_pf, running, _ = self._inflight
        now = self._t
        end_s, self._left, done = self._gpus.run_step(
            self._work, now, self._left, target_s, not n_pf
        )
        dt = end_s - now
        self._busy_s += dt
        self._running_seq_s += running * dt
        self._t = end_s
        if done:
            self._finish_step(end_s)

    def _jump_decode_steps(self, target_s: float) -> bool:
        """Run a stretch of identical decode-only steps in one go (False if none apply).

        Applies when the step just scheduled has no prefill, nothing can be admitted, every GPU
        stays at full clock under its cap and no cap is settling. It stops before the next
        completion, arrival, KV-cache overflow or ``target_s``. Only the growing context
        changes from step to step, so step times, energies and ITLs are exactly those of
        stepping one by one; the power sensor sees the stretch's mean power.
        """
        inflight = self._inflight
        if inflight is None or inflight[2] or inflight[4] or self._left != 1.0:
            return False
        n_dec, _, _, running, _ = inflight
        now = self._t
        if self._gpus.settling(now) or (self._waiting and running < self._limit):
            return False
        max_steps = self._decode_steps_before_change(n_dec)
        if max_steps < 2:
            return False
        work = self._work  # no prefill: the work of (n_dec, ctx, 0)
        if not self._gpus.full_clock_holds(now, work, work[1]):
            return False  # a cap binds from the first step (the check below would say so too)
        dmem_s = self._coef.kv_s_per_token * n_dec
        arrival_s = self._workload.peek_next_s()
        ends = self._gpus.decode_step_ends(now, work, dmem_s, max_steps, target_s, arrival_s)
        k = len(ends)
        if k < 2:
            return False
        _, mem_s, cmp_s = work
        if not self._gpus.full_clock_holds(now, work, mem_s + (k - 1) * dmem_s):
            return False
        end_s = ends[-1]
        mem_sum_s = k * mem_s + dmem_s * k * (k - 1) / 2
        self._gpus.commit_decode_stretch(end_s, end_s - now, mem_sum_s, cmp_s, k)
        self._record_decode_stretch(ends, n_dec, running)
        return True

    def _decode_steps_before_change(self, n_dec: int) -> int:
        """How many decode steps may run before the next completion or KV-cache overflow,
        less one (the step that changes things runs on its own)."""
        k_max = (self._heap[0][0] - self._step) if self._heap else 1 << 30
        return min(k_max, (self._kv_capacity - self._kv_used) // n_dec - 1)

    def _record_decode_stretch(self, ends: list[float], n_dec: int, running: int) -> None:
        """Account a stretch of decode steps ending at ``ends``: ITLs, tokens, KV, busy time."""
        itl = self._itl
        log = self._log
        prev = self._last_step_end_s
        for end in ends:
            itl.add(end - prev, n_dec)
            if log is not None:
                log.append((end - prev, n_dec))
            prev = end
        for r in self._tracked.values():
            r._times.extend(ends)  # type: ignore[union-attr]
        k = len(ends)
        end_s = ends[-1]
        duration_s = end_s - self._t
        grown = k * n_dec
        self._gen_tokens += grown
        self._ctx_sum += grown
        self._kv_used += grown
        self._busy_s += duration_s
        self._running_seq_s += running * duration_s
        self._last_step_end_s = end_s
        self._step += k
        self._t = end_s
        self._inflight = None

    def _finish_step(self, end_s: float) -> None:
        assert self._inflight is not None
        n_dec, _, _, _, finishing = self._inflight
        self._inflight = None
        s = self._step
        if n_dec:
            itl_s = end_s - self._last_step_end_s
            self._itl.add(itl_s, n_dec)
            if self._log is not None:
                self._log.append((itl_s, n_dec))
            self._gen_tokens += n_dec
            self._ctx_sum += n_dec
            self._kv_used += n_dec
            for r in self._tracked.values():
                r._times.append(end_s)  # type: ignore[union-attr]
        heap = self._heap
        while heap and heap[0][0] <= s:
            _, _, epoch, r = heapq.heappop(heap)
            if epoch == r._epoch:
                ctx = r.prompt_tokens + r.output_tokens
                self._ctx_sum -= ctx
                self._kv_used -= ctx
                del self._decoding[r.request_id]
                self._tracked.pop(r.request_id, None)
                r.finish_s = end_s
                self._request_times.finished(r)
                self._success += 1
        for r in finishing:
            self._prefilling.remove(r)
            self._gen_tokens += 1
            if r.first_token_s is None:
                r.first_token_s = end_s
                self._ttft.add(end_s - r.arrival_s)
                self._request_times.first_token(r)
                self._prompt_tokens += r.prompt_tokens
            if r._times is not None:
                r._times.append(end_s)
            r._base = r._done + 1
            r._origin = s
            ctx = r.prompt_tokens + r._base
            if r._base >= r.output_tokens:
                self._kv_used -= ctx - 1
                r.finish_s = end_s
                self._request_times.finished(r)
                self._success += 1
                continue
            self._kv_used += 1
            self._ctx_sum += ctx
            self._decoding[r.request_id] = r
            if r._times is not None:
                self._tracked[r.request_id] = r
            heapq.heappush(heap, (s + r.output_tokens - r._base, r.request_id, r._epoch, r))
        self._last_step_end_s = end_s
        self._step = s + 1

    def _preempt_last(self) -> None:
        """Free the most recently started decode sequence; it will recompute its context."""
        rid, r = self._decoding.popitem()
        tokens = r._base + (self._step - 1 - r._origin)
        ctx = r.prompt_tokens + tokens
        self._ctx_sum -= ctx
        self._kv_used -= ctx
        self._tracked.pop(rid, None)
        r._epoch += 1
        r._done = tokens
        r._pf_left = ctx
        self._waiting.appendleft(r)
        self._preemptions += 1


def _lengths(a: Arrival) -> tuple[int, int]:
    return a.prompt_tokens, a.output_tokens
