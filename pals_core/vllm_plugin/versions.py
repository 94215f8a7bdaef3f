"""The vLLM releases the scheduler plugin supports, and where each keeps the admission limit.

vLLM sizes its model runner (per-request buffers, CUDA graphs) for ``max_num_seqs`` at start-up,
so the plugin changes only the limit on admission into RUNNING, never that capacity. Adding a
version means reading its ``vllm/v1/core/sched/scheduler.py`` and checking that admission of
WAITING requests stops when ``len(running) >= <attribute>`` (a ``>=`` test, so a limit lowered
below the running count admits nothing and preempts nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from pals_core.errors import EngineError


@dataclass(frozen=True, slots=True)
class SchedulerLayout:
    admission_attribute: str
    """The scheduler attribute read on each step before admitting a waiting request."""
    capacity_attribute: str
    """The scheduler attribute holding the start-up ``max_num_seqs`` (the upper bound)."""


SUPPORTED_VERSIONS: dict[str, SchedulerLayout] = {
    # vllm/v1/core/sched/scheduler.py: `if num_running >= self.max_num_active_reqs: break`
    # (scheduler_config.max_num_active_seqs, default max_num_seqs); capacity max_num_running_reqs.
    "0.32": SchedulerLayout("max_num_active_reqs", "max_num_running_reqs"),
}


class UnsupportedVLLMVersionError(EngineError):
    """The running vLLM is not a release the scheduler plugin was checked against."""


def check_vllm_version(version: str) -> SchedulerLayout:
    """The layout for vLLM ``version`` (e.g. ``"0.32.0"``, ``"0.32.1+cpu"``), or an error naming
    the supported releases."""
    parts = version.split("+")[0].split(".")
    series = ".".join(parts[:2])
    layout = SUPPORTED_VERSIONS.get(series)
    if layout is None:
        supported = ", ".join(f"{v}.x" for v in SUPPORTED_VERSIONS)
        raise UnsupportedVLLMVersionError(
            f"the PALS scheduler plugin does not support vLLM {version}; supported: {supported}. "
            "Run a supported vLLM, or drop --scheduler-cls and put `pals proxy` in front of "
            "vLLM for the batch limit (docs/vllm.md)"
        )
    return layout
