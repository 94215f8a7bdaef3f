"""The PALS plugin for vLLM: the batch limit (``max_num_seqs``) changed at run time.

Start vLLM with ``--scheduler-cls pals_core.vllm_plugin.PalsScheduler`` and
``PALS_VLLM_CONTROL=unix:/run/pals/vllm.sock`` (or ``127.0.0.1:PORT``): the scheduler, in vLLM's
engine-core process, then serves ``GET/POST /pals/batch_limit`` on that address (see
docs/vllm.md). Importing this package does not import vLLM: ``PalsScheduler`` loads it on first
use, inside the vLLM process, and the control-channel and version modules need only the standard
library.
"""

from __future__ import annotations

from typing import Any

from pals_core.vllm_plugin.control import CONTROL_ENV, ControlAddress, parse_control_address
from pals_core.vllm_plugin.versions import SUPPORTED_VERSIONS, check_vllm_version

__all__ = [
    "CONTROL_ENV",
    "SUPPORTED_VERSIONS",
    "ControlAddress",
    "PalsScheduler",
    "check_vllm_version",
    "parse_control_address",
]


def __getattr__(name: str) -> Any:
    if name == "PalsScheduler":
        from pals_core.vllm_plugin.scheduler import PalsScheduler

        return PalsScheduler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
