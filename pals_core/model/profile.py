"""A node's measured power-performance profile: a sweep of (power cap, batch limit) points.

A profile is data, not a model: each :class:`ProfilePoint` is one steady-state measurement under a
saturating load. :class:`~pals_core.model.performance.PerformanceModel` fits it. The JSON file
carries the metadata needed to refuse a profile taken on another kind of node (GPU type or count,
model), because a controller driven by the wrong curves meets neither targets nor budgets.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pals_core.errors import ProfileError, ProfileMismatchError

PROFILE_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ProfileMetadata:
    """Where and how a profile was taken."""

    gpu_name: str
    """The GPU's name as its backend reports it (NVML's product name, or the simulator's)."""
    num_gpus: int
    model: str
    tensor_parallel: int
    engine: str = "vllm"
    engine_version: str = ""
    created_utc: str = ""
    """ISO 8601 date of the sweep."""
    warmup_s: float = 0.0
    window_s: float = 0.0
    caps_w: tuple[float, ...] = ()
    """The per-GPU power caps swept (every GPU of the node had the same cap)."""
    batches: tuple[int, ...] = ()
    notes: str = ""
    """Free text: the load generator, the seed or device the profile was taken on, etc."""


@dataclass(frozen=True, slots=True)
class ProfilePoint:
    """One steady-state measurement at a per-GPU power cap and a batch limit.

    Throughput and power are node totals (all GPUs); ``power_per_gpu_w`` keeps the split.
    """

    cap_w: float
    batch: int
    throughput_tok_s: float
    """Output tokens per second over the window."""
    power_w: float
    """Mean node GPU power over the window, from the energy counters."""
    power_per_gpu_w: tuple[float, ...]
    itl_p50_s: float
    itl_p99_s: float
    ttft_p99_s: float
    mean_running: float
    """Mean number of running sequences over the window (saturation check: close to ``batch``)."""
    saturated: bool
    """True when requests were waiting at the end of the window (the load kept the batch full)."""

    @property
    def energy_per_token_j(self) -> float:
        return self.power_w / self.throughput_tok_s if self.throughput_tok_s > 0 else math.inf


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """What must match between a profile and the node it drives."""

    gpu_name: str
    num_gpus: int
    model: str


@dataclass(frozen=True, slots=True)
class Profile:
    metadata: ProfileMetadata
    points: tuple[ProfilePoint, ...] = field(default_factory=tuple)

    def check_matches(self, node: NodeIdentity) -> None:
        """Raise :class:`ProfileMismatchError` naming every difference from ``node``."""
        diffs = []
        meta = self.metadata
        if meta.gpu_name != node.gpu_name:
            diffs.append(f"GPU type: profile {meta.gpu_name!r}, node {node.gpu_name!r}")
        if meta.num_gpus != node.num_gpus:
            diffs.append(f"GPU count: profile {meta.num_gpus}, node {node.num_gpus}")
        if meta.model != node.model:
            diffs.append(f"model: profile {meta.model!r}, node {node.model!r}")
        if diffs:
            raise ProfileMismatchError(diffs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": PROFILE_FORMAT_VERSION,
            "metadata": asdict(self.metadata),
            "points": [asdict(p) for p in self.points],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        try:
            version = data.get("format_version")
            if version != PROFILE_FORMAT_VERSION:
                raise ProfileError(
                    f"format_version {version!r} is not supported (expected "
                    f"{PROFILE_FORMAT_VERSION})"
                )
            meta = dict(data["metadata"])
            meta["caps_w"] = tuple(float(c) for c in meta.get("caps_w", ()))
            meta["batches"] = tuple(int(b) for b in meta.get("batches", ()))
            points = []
            for raw in data["points"]:
                item = dict(raw)
                item["power_per_gpu_w"] = tuple(float(p) for p in item["power_per_gpu_w"])
                points.append(ProfilePoint(**item))
            return cls(ProfileMetadata(**meta), tuple(points))
        except (KeyError, TypeError, ValueError) as err:
            raise ProfileError(f"not a valid profile: {err}") from err

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise ProfileError(
                f"profile {path} is not UTF-8 text (byte {err.start}): a profile is the JSON "
                "written by `pals profile`"
            ) from err
        except (OSError, json.JSONDecodeError) as err:
            raise ProfileError(f"cannot read profile {path}: {err}") from err
        if not isinstance(data, dict):
            raise ProfileError(f"profile {path} is not a JSON object")
        return cls.from_dict(data)
