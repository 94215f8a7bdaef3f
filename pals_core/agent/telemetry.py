"""Per-second telemetry samples from the control ticks, and the QoS window verdicts.

:class:`TelemetryRecorder` gets every tick's cumulative counters (energy, generated tokens) and
knobs, and at each whole UTC second it emits one :class:`TelemetrySample` covering the second
that just ended (a tick late by more than a second covers each second it spans): mean power and
throughput from the counters (not one instant's reading), the offered load
(:func:`offered_tok_s`), the caps per GPU, the batch limit, the queue, the controller's mode,
and the verdict of the last QoS window (:func:`pals_core.control.qos.evaluate_window`, ITL p99
against the SLO). Each sample has an id
(``<run id>-<sequence>``) fixed when it is made, so sending it twice is harmless: the gateway
keeps the first. Pure: the caller passes the time.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pals_core.control.demand import mean_output_tok, output_horizon_tok
from pals_core.control.qos import QoSPolicy, evaluate_window
from pals_core.engine.base import EngineMetrics


@dataclass(frozen=True, slots=True)
class TelemetrySample:
    sample_id: str
    ts: str
    """ISO 8601 UTC: the start of the second the sample covers."""
    power_w: float
    throughput_tok_s: float
    power_cap_w: float
    """The caps' sum (node GPU power cap)."""
    gpu_power_caps_w: tuple[float, ...]
    batch_limit: int
    requests_waiting: int
    qos_violation: bool
    """The latest completed QoS window was violated."""
    mode: str
    demand_tok_s: float
    """The offered output-token rate over the second (:func:`offered_tok_s`)."""

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["gpu_power_caps_w"] = list(self.gpu_power_caps_w)
        return data


def offered_tok_s(
    served_tok: float, waiting_growth: int, mean_output_tok: float, duration_s: float
) -> float:
    """The output-token rate asked of the node over ``duration_s``: the tokens it served plus
    the growth of its queue, counted in output tokens (``waiting_growth`` requests, each of
    ``mean_output_tok`` tokens, the node's mean so far; 0 before its first token), per second;
    never negative (a queue drained faster than it was served in one second counts 0).
    Summed over an interval it is the tokens served plus the queue's net growth: what the
    arrivals asked for, whatever the caps let through."""
    queued_tok = waiting_growth * mean_output_tok if mean_output_tok > 0 else 0.0
    return max(0.0, (served_tok + queued_tok) / duration_s)


class TelemetryRecorder:
    """Counters in, one sample per whole second out (see the module doc)."""

    def __init__(self, qos: QoSPolicy, run_id: str | None = None) -> None:
        self.qos = qos
        self.run_id = run_id or secrets.token_hex(6)
        self._seq = 0
        self._pending: list[TelemetrySample] = []
        self._second: int | None = None
        self._energy_j = math.nan
        self._tokens = 0
        self._waiting = 0
        self._first: EngineMetrics | None = None
        self._wall_s = math.nan
        self._energy_wall_s = math.nan
        self._window_start: EngineMetrics | None = None
        self._window_violated = False

    def record(
        self,
        wall_s: float,
        *,
        energy_j: float,
        metrics: EngineMetrics,
        power_limits_w: tuple[float, ...],
        batch_limit: int,
        mode: str,
        energy_wall_s: float | None = None,
    ) -> bool | None:
        """Take one tick; returns a QoS window's verdict when one completed at this tick.

        ``energy_wall_s``: when the energy counters were last refreshed (default: ``wall_s``).
        A counter refreshed every 100 ms and read at ticks 100 ms apart covers 0.9, 1 or 1.1 s
        of energy in a second of ticks as their phases drift across its refreshes: dividing by
        the ticks' spacing reads up to 10 % over or under in that second (the error cancels over
        the next). A caller that knows the refresh instants passes them, and the power is the
        energy over the time it covers."""
        verdict = self._window(metrics)
        second = math.floor(wall_s)
        energy_s = wall_s if energy_wall_s is None else energy_wall_s
        if self._second is None:
            self._start(second, wall_s, energy_j, energy_s, metrics)
            return verdict
        if second > self._second:
            dt_s = wall_s - self._wall_s
            energy_dt_s = energy_s - self._energy_wall_s
            if dt_s > 0:
                if energy_dt_s <= 0:  # no refresh since the window began: the ticks' spacing
                    energy_dt_s = dt_s
                power_w = max(0.0, (energy_j - self._energy_j) / energy_dt_s)
                served = metrics.generation_tokens_total - self._tokens
                tok_s = max(0.0, served / dt_s)
                demand_tok_s = offered_tok_s(
                    served,
                    metrics.num_requests_waiting - self._waiting,
                    self._mean_output_tok(metrics, tok_s),
                    dt_s,
                )
                for covered in range(self._second, second):  # a late tick covers every second
                    self._seq += 1
                    self._pending.append(
                        TelemetrySample(
                            sample_id=f"{self.run_id}-{self._seq}",
                            ts=datetime.fromtimestamp(covered, UTC).isoformat(),
                            power_w=power_w,
                            throughput_tok_s=tok_s,
                            power_cap_w=round(sum(power_limits_w), 3),
                            gpu_power_caps_w=tuple(round(c, 3) for c in power_limits_w),
                            batch_limit=batch_limit,
                            requests_waiting=metrics.num_requests_waiting,
                            qos_violation=self._window_violated,
                            mode=mode[:32],
                            demand_tok_s=round(demand_tok_s, 3),
                        )
                    )
            self._start(second, wall_s, energy_j, energy_s, metrics)
        return verdict

    def _start(
        self, second: int, wall_s: float, energy_j: float, energy_s: float, metrics: EngineMetrics
    ) -> None:
        self._second, self._wall_s, self._energy_wall_s = second, wall_s, energy_s
        self._energy_j, self._tokens = energy_j, metrics.generation_tokens_total
        self._waiting = metrics.num_requests_waiting
        if self._first is None:
            self._first = metrics

    def _mean_output_tok(self, metrics: EngineMetrics, tok_s: float) -> float:
        """Output tokens per request since the first tick, the requests in flight counted as
        censored (:func:`pals_core.control.demand.mean_output_tok`; the horizon is this second's
        per-request rate over the time observed); 0 before any."""
        first = self._first
        if first is None:
            return 0.0
        running = metrics.num_requests_running
        mean = mean_output_tok(
            metrics.generation_tokens_total - first.generation_tokens_total,
            metrics.request_success_total - first.request_success_total,
            running,
            output_horizon_tok(tok_s, running, metrics.timestamp_s - first.timestamp_s),
        )
        return 0.0 if math.isnan(mean) else mean

    def _window(self, metrics: EngineMetrics) -> bool | None:
        start = self._window_start
        if start is None or metrics.timestamp_s < start.timestamp_s:
            self._window_start = metrics
            return None
        if metrics.timestamp_s - start.timestamp_s < self.qos.window_s:
            return None
        verdict = evaluate_window(start, metrics, None, self.qos).violated
        self._window_start = metrics
        self._window_violated = verdict
        return verdict

    def take(self) -> list[TelemetrySample]:
        """The samples made since the last call, oldest first."""
        out, self._pending = self._pending, []
        return out
