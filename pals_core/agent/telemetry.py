"""Per-second telemetry samples from the control ticks, and the QoS window verdicts.

:class:`TelemetryRecorder` gets every tick's cumulative counters (energy, generated tokens) and
knobs, and at each whole UTC second it emits one :class:`TelemetrySample` covering the second
that just ended (a tick late by more than a second covers each second it spans): mean power and
throughput from the counters (not one instant's reading), the caps per GPU, the batch limit, the
queue, the controller's mode, and the verdict of the last QoS window
(:func:`pals_core.control.qos.evaluate_window`, ITL p99 against the SLO). Each sample has an id
(``<run id>-<sequence>``) fixed when it is made, so sending it twice is harmless: the gateway
keeps the first. Pure: the caller passes the time.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["gpu_power_caps_w"] = list(self.gpu_power_caps_w)
        return data


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
        self._wall_s = math.nan
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
    ) -> bool | None:
        """Take one tick; returns a QoS window's verdict when one completed at this tick."""
        verdict = self._window(metrics)
        second = math.floor(wall_s)
        if self._second is None:
            self._start(second, wall_s, energy_j, metrics)
            return verdict
        if second > self._second:
            dt_s = wall_s - self._wall_s
            if dt_s > 0:
                power_w = max(0.0, (energy_j - self._energy_j) / dt_s)
                tok_s = max(0.0, (metrics.generation_tokens_total - self._tokens) / dt_s)
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
                        )
                    )
            self._start(second, wall_s, energy_j, metrics)
        return verdict

    def _start(self, second: int, wall_s: float, energy_j: float, metrics: EngineMetrics) -> None:
        self._second, self._wall_s = second, wall_s
        self._energy_j, self._tokens = energy_j, metrics.generation_tokens_total

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
