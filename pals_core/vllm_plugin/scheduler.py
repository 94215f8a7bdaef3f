"""``PalsScheduler``: vLLM's own scheduler with its admission limit settable at run time.

Imported only inside vLLM's engine-core process (through ``--scheduler-cls
pals_core.vllm_plugin.PalsScheduler``). It subclasses whichever scheduler vLLM would have used
(``AsyncScheduler`` when async scheduling is on, else ``Scheduler``), changes no scheduling
logic, and starts the control channel (:mod:`pals_core.vllm_plugin.control`) on the address in
``PALS_VLLM_CONTROL``. A new limit is an attribute write that the next scheduling step reads:
lowering it below the running count admits nothing new until running requests finish; no
request is preempted or dropped for it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import vllm
from vllm.v1.core.sched.async_scheduler import AsyncScheduler
from vllm.v1.core.sched.scheduler import Scheduler

from pals_core.vllm_plugin.control import (
    CONTROL_ENV,
    BatchLimitRefused,
    ControlServer,
    parse_control_address,
)
from pals_core.vllm_plugin.history import AdmissionHistory
from pals_core.vllm_plugin.versions import SchedulerLayout, check_vllm_version

logger = logging.getLogger("vllm.pals")


class _BatchLimitMixin:
    """Added in front of vLLM's scheduler class; ``_pals_*`` names avoid vLLM's."""

    _pals_layout: SchedulerLayout
    _pals_control: ControlServer | None = None
    _pals_history: AdmissionHistory | None = None
    _pals_set_at_s: float | None = None
    running: Any
    waiting: Any

    def schedule(self, *args: Any, **kwargs: Any) -> Any:
        """vLLM's step, unchanged; then the running count goes to the admission history."""
        output = super().schedule(*args, **kwargs)  # type: ignore[misc]
        history = self._pals_history
        if history is not None:
            history.record(len(self.running), len(self.waiting), self._pals_limit())
        return output

    def _pals_start(self, layout: SchedulerLayout, address: str) -> None:
        self._pals_layout = layout
        self._pals_history = AdmissionHistory()
        self._pals_control = ControlServer(
            parse_control_address(address),
            self._pals_state,
            self._pals_set_limit,
            self._pals_history.as_json,
        )
        self._pals_control.start()
        logger.info(
            "PALS: batch limit %d (of %d) settable on %s %s",
            self._pals_limit(),
            self._pals_capacity(),
            address,
            "/pals/batch_limit",
        )

    def _pals_limit(self) -> int:
        return int(getattr(self, self._pals_layout.admission_attribute))

    def _pals_capacity(self) -> int:
        return int(getattr(self, self._pals_layout.capacity_attribute))

    def _pals_state(self) -> dict[str, Any]:
        return {
            "max_num_seqs": self._pals_limit(),
            "max_num_seqs_max": self._pals_capacity(),
            "num_running": len(self.running),
            "num_waiting": len(self.waiting),
            "limit_set_at_s": self._pals_set_at_s,
            "vllm_version": vllm.__version__,
        }

    def _pals_set_limit(self, max_num_seqs: int) -> dict[str, Any]:
        capacity = self._pals_capacity()
        if not 1 <= max_num_seqs <= capacity:
            raise BatchLimitRefused(
                f"max_num_seqs must be within [1, {capacity}] (vLLM was started with "
                f"--max-num-seqs {capacity}, which sizes its buffers), got {max_num_seqs}"
            )
        setattr(self, self._pals_layout.admission_attribute, max_num_seqs)
        self._pals_set_at_s = time.monotonic()
        if self._pals_history is not None:
            self._pals_history.record(len(self.running), len(self.waiting), max_num_seqs)
        logger.info("PALS: batch limit set to %d", max_num_seqs)
        return self._pals_state()

    def _pals_shutdown(self) -> None:
        if self._pals_control is not None:
            self._pals_control.close()
            self._pals_control = None


class PalsSyncScheduler(_BatchLimitMixin, Scheduler):
    def shutdown(self) -> None:
        self._pals_shutdown()
        super().shutdown()


class PalsAsyncScheduler(_BatchLimitMixin, AsyncScheduler):
    def shutdown(self) -> None:
        self._pals_shutdown()
        super().shutdown()


class PalsScheduler:
    """What ``--scheduler-cls`` names: builds a :class:`PalsAsyncScheduler` or a
    :class:`PalsSyncScheduler` to match vLLM's async-scheduling setting, after checking the vLLM
    version and the control address (either problem stops vLLM's start with a clear message)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        layout = check_vllm_version(vllm.__version__)
        address = os.environ.get(CONTROL_ENV, "").strip()
        if not address:
            raise RuntimeError(
                f"the PALS scheduler plugin needs {CONTROL_ENV}: set it to the control "
                "channel's address, e.g. unix:/run/pals/vllm.sock or 127.0.0.1:8101 (docs/vllm.md)"
            )
        vllm_config = kwargs["vllm_config"] if "vllm_config" in kwargs else args[0]
        parallel = vllm_config.parallel_config
        if parallel.data_parallel_size > 1:
            raise RuntimeError(
                "the PALS scheduler plugin drives one engine core; data parallel "
                f"(data_parallel_size={parallel.data_parallel_size}) would need one control "
                "address per rank: run one vLLM per GPU group, or use `pals proxy`"
            )
        async_scheduling = bool(vllm_config.scheduler_config.async_scheduling)
        base = PalsAsyncScheduler if async_scheduling else PalsSyncScheduler
        scheduler = base(*args, **kwargs)
        scheduler._pals_start(layout, address)
        return scheduler
