"""The lightweight power-performance model fitted to a sparse profile.

Throughput and node power are each fitted in log space over the plane ``(log batch, log cap)`` by
a smoothing thin-plate spline (with a linear trend, so it extrapolates gently). Log space because
the quantities are positive and vary over decades in batch; log axes because throughput and power
grow roughly logarithmically while the batch doubles, and speed climbs steeply just above the
minimum cap. A thin-plate spline bends to the "knee" where the cap starts to bind (above it,
throughput and power no longer depend on the cap) without a hand-written physics formula that
might not match the hardware.

ITL quantiles are measured from coarse histogram buckets, so they are noisy; they are modelled
through physics instead: an ITL quantile is a ratio times the mean step time, and the mean step
time is batch / throughput. The ratio (prefill interference and step-length spread) is fitted by
least squares with four parameters, so noise averages out, and the fitted throughput surface
carries the strong dependence on cap and batch.

At fit time the model is tabulated on a dense grid (cap every few watts x log-spaced batches) and
the table is made monotone where physics says so (throughput and power never fall when the cap or
the batch grows; ITL never grows with the cap nor falls with the batch), by running maxima along
each axis. Predictions interpolate the table bilinearly, so the controller's search is a handful of
numpy operations (well under a millisecond). Below the smallest batch profiled, throughput is
scaled linearly with batch (decode step time is flat at small batches) and power, ITL are held.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import RBFInterpolator

from pals_core.errors import ProfileError
from pals_core.model.profile import Profile, ProfilePoint

FloatArray = NDArray[np.float64]

QUANTITIES = ("throughput_tok_s", "power_w", "itl_p50_s", "itl_p99_s")
MIN_POINTS = 6
CAP_STEP_W = 2.5
BATCH_GRID_SIZE = 96


@dataclass(frozen=True, slots=True)
class Prediction:
    throughput_tok_s: float
    """Node output tokens per second with the batch full (saturated)."""
    power_w: float
    """Node GPU power (sum over GPUs)."""
    itl_p50_s: float
    itl_p99_s: float

    @property
    def energy_per_token_j(self) -> float:
        return self.power_w / self.throughput_tok_s


@dataclass(frozen=True, slots=True)
class OperatingTable:
    """The model tabulated for search: rows are per-GPU caps, columns are batch sizes."""

    num_gpus: int
    caps_w: FloatArray
    batches: FloatArray
    throughput_tok_s: FloatArray
    power_w: FloatArray
    itl_p50_s: FloatArray
    itl_p99_s: FloatArray


def _features(
    cap_w: FloatArray,
    batch: FloatArray,
    cap_span: tuple[float, float],
    log_span: tuple[float, float],
) -> FloatArray:
    """Log batch and log cap, each scaled to [0, 1] over the profile so the spline treats them
    evenly. Log cap because speed climbs steeply just above the minimum cap (the clock is near its
    voltage floor there) and flattens once the cap stops binding: in log cap the climb is gentler
    and a spline interpolates it from sparse caps (leave-one-out error halves on the simulator)."""
    c0, c1 = cap_span
    l0, l1 = log_span
    x = (np.log(batch) - l0) / max(l1 - l0, 1e-9)
    y = (np.log(cap_w) - math.log(c0)) / max(math.log(c1) - math.log(c0), 1e-9)
    return np.column_stack([x, y])


def _ratio_design(features: FloatArray) -> FloatArray:
    """Regressors of the ITL quantile/mean ratio: quadratic in log batch, linear in log cap."""
    x, y = features[:, 0], features[:, 1]
    return np.column_stack([np.ones_like(x), x, x * x, y])


def _usable(point: ProfilePoint) -> bool:
    values = (point.throughput_tok_s, point.power_w, point.itl_p50_s, point.itl_p99_s)
    return all(math.isfinite(v) and v > 0 for v in values)


class PerformanceModel:
    """Predicts saturated throughput, power and ITL for any (per-GPU cap, batch) in range."""

    def __init__(self, profile: Profile, table: OperatingTable, smoothing: float) -> None:
        self.profile = profile
        self.table = table
        self.smoothing = smoothing
        self.num_gpus = profile.metadata.num_gpus
        self.min_cap_w = float(table.caps_w[0])
        self.max_cap_w = float(table.caps_w[-1])
        self.min_batch = int(min(p.batch for p in profile.points))
        self.max_batch = int(table.batches[-1])
        # The table as Python floats for :meth:`predict`: numpy's per-call overhead on scalars
        # and tiny slices is many times the arithmetic (a decision predicts a few times, a
        # fleet of 200 nodes ~100 times per second). Same float64 values, so same results.
        self._caps_w: list[float] = table.caps_w.tolist()
        self._batches: list[float] = table.batches.tolist()
        self._log_batches = [math.log(b) for b in self._batches]
        self._rows = tuple(
            a.tolist()
            for a in (table.throughput_tok_s, table.power_w, table.itl_p50_s, table.itl_p99_s)
        )

    @classmethod
    def fit(cls, profile: Profile, *, smoothing: float = 1e-3) -> PerformanceModel:
        points = [p for p in profile.points if _usable(p)]
        caps = sorted({p.cap_w for p in points})
        batches = sorted({p.batch for p in points})
        if len(points) < MIN_POINTS or len(caps) < 2 or len(batches) < 2:
            raise ProfileError(
                f"a profile needs >= {MIN_POINTS} valid points over >= 2 caps and >= 2 batches; "
                f"got {len(points)} points, {len(caps)} caps, {len(batches)} batches"
            )
        cap_span = (caps[0], caps[-1])
        log_span = (math.log(batches[0]), math.log(batches[-1]))
        x = _features(
            np.array([p.cap_w for p in points]),
            np.array([float(p.batch) for p in points]),
            cap_span,
            log_span,
        )
        n_caps = max(2, round((caps[-1] - caps[0]) / CAP_STEP_W) + 1)
        grid_caps = np.linspace(caps[0], caps[-1], n_caps)
        grid_batches = np.unique(
            np.concatenate(
                [np.geomspace(1.0, batches[-1], BATCH_GRID_SIZE), np.array(batches, float)]
            )
        )
        fit_batches = np.maximum(grid_batches, batches[0])
        cc, bb = np.meshgrid(grid_caps, fit_batches, indexing="ij")
        xq = _features(cc.ravel(), bb.ravel(), cap_span, log_span)
        surfaces: dict[str, FloatArray] = {}
        for name in ("throughput_tok_s", "power_w"):
            y = np.log(np.array([getattr(p, name) for p in points]))
            spline = RBFInterpolator(
                x, y, kernel="thin_plate_spline", smoothing=smoothing, degree=1
            )
            surfaces[name] = np.exp(spline(xq)).reshape(cc.shape)
        # ITL = (quantile / mean ratio) x mean step time, and the mean step time is batch /
        # throughput (Little's law on tokens). The ratio varies little and smoothly, so a
        # 4-parameter least-squares fit carries it; the speed comes from the throughput surface.
        measured_tput = np.array([p.throughput_tok_s for p in points])
        measured_batch = np.array([float(p.batch) for p in points])
        design = _ratio_design(x)
        design_q = _ratio_design(xq)
        mean_step_s = bb / surfaces["throughput_tok_s"]
        for name in ("itl_p50_s", "itl_p99_s"):
            itl = np.array([getattr(p, name) for p in points])
            ratio = np.log(itl * measured_tput / measured_batch)
            coef, *_ = np.linalg.lstsq(design, ratio, rcond=None)
            surfaces[name] = np.exp(design_q @ coef).reshape(cc.shape) * mean_step_s
        # Below the smallest profiled batch: throughput proportional to batch, the rest held.
        scale = np.where(grid_batches < batches[0], grid_batches / batches[0], 1.0)
        surfaces["throughput_tok_s"] = surfaces["throughput_tok_s"] * scale[None, :]
        # Physics: monotone in cap and batch.
        for name in ("throughput_tok_s", "power_w"):
            s = np.maximum.accumulate(surfaces[name], axis=0)
            surfaces[name] = np.maximum.accumulate(s, axis=1)
        for name in ("itl_p50_s", "itl_p99_s"):
            s = np.maximum.accumulate(surfaces[name][::-1, :], axis=0)[::-1, :]
            surfaces[name] = np.maximum.accumulate(s, axis=1)
        table = OperatingTable(
            num_gpus=profile.metadata.num_gpus,
            caps_w=grid_caps,
            batches=grid_batches,
            throughput_tok_s=surfaces["throughput_tok_s"],
            power_w=surfaces["power_w"],
            itl_p50_s=surfaces["itl_p50_s"],
            itl_p99_s=surfaces["itl_p99_s"],
        )
        return cls(profile, table, smoothing)

    def predict(self, cap_w: float, batch: float) -> Prediction:
        """Saturated figures at a per-GPU cap and a batch (clamped to the profiled range).

        Bilinear in cap and log batch over the table, in plain Python (bit for bit the numpy
        interpolation: ``bisect_left`` is ``searchsorted``, the arithmetic is the same doubles in
        the same order)."""
        caps, batches, logs = self._caps_w, self._batches, self._log_batches
        c = min(max(cap_w, self.min_cap_w), self.max_cap_w)
        b = min(max(batch, 1.0), batches[-1])
        i = min(max(bisect_left(caps, c) - 1, 0), len(caps) - 2)
        j = min(max(bisect_left(batches, b) - 1, 0), len(batches) - 2)
        c0 = caps[i]
        wc = (c - c0) / (caps[i + 1] - c0)
        lb0 = logs[j]
        wb = (math.log(b) - lb0) / (logs[j + 1] - lb0)
        vc, vb = 1 - wc, 1 - wb
        out = []
        for a in self._rows:
            r0, r1 = a[i], a[i + 1]
            top = r0[j] * vb + r0[j + 1] * wb
            bottom = r1[j] * vb + r1[j + 1] * wb
            out.append(top * vc + bottom * wc)
        return Prediction(
            throughput_tok_s=out[0], power_w=out[1], itl_p50_s=out[2], itl_p99_s=out[3]
        )
