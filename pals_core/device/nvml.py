"""A node's NVIDIA GPUs as one group, and undoing what a run changed.

:class:`NVMLGPUGroup` remembers each GPU's original limit before its first write (that is
:class:`GPUGroup`'s job) and, before that write, saves it to a small JSON state file
(``<PALS_DATA_DIR>/gpu-restore.json``, :mod:`pals_core.device.restore_state`). Closing the group,
normal interpreter exit (atexit) and SIGTERM/SIGINT put the originals back; after a crash
(``kill -9``), ``pals gpu restore`` reads the state file and does it. In observe-only mode the group
refuses a change before it remembers anything.

One GPU and the NVML binding are in :mod:`pals_core.device.nvml_gpu`; which GPUs are visible in
:mod:`pals_core.device.visible_devices`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from pals_core.device.gpu import GPUGroup
from pals_core.device.nvml_gpu import NVMLGPU, WriteAccess, init_nvml, load_nvml, nvml_call
from pals_core.device.restore_state import RestoreStateFile, default_state_path
from pals_core.device.visible_devices import parse_visible_devices, refuse_mig, select_handles
from pals_core.errors import GPUError

__all__ = [
    "NVMLGPU",
    "NVMLGPUGroup",
    "RestoredLimit",
    "WriteAccess",
    "build_nvml_group",
    "load_nvml",
    "parse_visible_devices",
    "restore_saved_limits",
]

log = logging.getLogger(__name__)


class NVMLGPUGroup(GPUGroup):
    """A node's NVML GPUs: saves originals to the state file before the first write, and puts
    them back on close, at interpreter exit and on SIGTERM/SIGINT (after
    :meth:`install_restore_handlers`)."""

    def __init__(
        self,
        gpus: Sequence[NVMLGPU],
        *,
        nvml: ModuleType,
        access: WriteAccess,
        state: RestoreStateFile | None,
    ) -> None:
        super().__init__(gpus)
        self._nvml_gpus = list(gpus)
        self._nvml = nvml
        self.access = access
        self.state = state
        self._previous_handlers: dict[int, Any] = {}
        self._atexit_registered = False
        self._shut_down = False

    def _before_first_write(self, position: int, original_w: float) -> None:
        gpu = self._nvml_gpus[position]
        self.access.check(gpu.index)
        if self.state is not None:
            self.state.remember(gpu, original_w)

    def restore(self) -> None:
        restored = [self._nvml_gpus[p].uuid for p in self.changed_positions]
        super().restore()
        if self.state is not None and restored:
            self.state.forget(restored, pid=os.getpid())

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._uninstall_handlers()
            if not self._shut_down:
                self._shut_down = True
                with contextlib.suppress(Exception):
                    self._nvml.nvmlShutdown()

    def install_restore_handlers(self) -> None:
        """Restore the limits at interpreter exit and on SIGTERM/SIGINT, then let the signal do
        what it did before (the previous handler runs; with none, the process dies of the signal
        with the conventional status). Signals left ignored stay ignored."""
        if not self._atexit_registered:
            atexit.register(self._close_quietly)
            self._atexit_registered = True
        if threading.current_thread() is not threading.main_thread():
            log.warning("not in the main thread: GPU limits are restored at exit, not on signals")
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN or signum in self._previous_handlers:
                continue
            self._previous_handlers[signum] = previous
            signal.signal(signum, self._on_signal)

    def _uninstall_handlers(self) -> None:
        if self._atexit_registered:
            atexit.unregister(self._close_quietly)
            self._atexit_registered = False
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in list(self._previous_handlers.items()):
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, previous)
            del self._previous_handlers[signum]

    def _close_quietly(self) -> None:
        try:
            self.close()
        except Exception:
            log.exception("could not restore every GPU power limit; run `pals gpu restore`")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous_handlers.get(signum, signal.SIG_DFL)
        self._close_quietly()
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def build_nvml_group(
    *,
    visible_devices: str | None = None,
    use_env: bool = True,
    observe_only: bool | None = None,
    state_path: Path | None = None,
    install_handlers: bool = True,
) -> NVMLGPUGroup:
    """Open this node's GPUs (those ``CUDA_VISIBLE_DEVICES`` shows, unless ``visible_devices``
    is given; ``use_env=False`` ignores the variable). ``observe_only`` and ``state_path``
    default to the settings (``PALS_OBSERVE_ONLY``, ``<PALS_DATA_DIR>/gpu-restore.json``)."""
    from pals_core.settings import get_settings

    if visible_devices is None and use_env:
        visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    if observe_only is None:
        observe_only = get_settings().observe_only
    entries = parse_visible_devices(visible_devices)
    nvml = load_nvml()
    init_nvml(nvml)
    try:
        handles = select_handles(nvml, entries)
        access = WriteAccess(observe_only)
        gpus = []
        for h in handles:
            gpu = NVMLGPU(nvml, h, access=access)
            refuse_mig(nvml, h, f"GPU {gpu.index} ({gpu.uuid})")
            gpus.append(gpu)
    except BaseException:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
        raise
    state = RestoreStateFile(state_path or default_state_path())
    group = NVMLGPUGroup(gpus, nvml=nvml, access=access, state=state)
    if install_handlers:
        group.install_restore_handlers()
    return group


@dataclass(frozen=True, slots=True)
class RestoredLimit:
    uuid: str
    index: int
    name: str
    limit_w: float
    source: str  # "saved" or "default"


def restore_saved_limits(
    *, state_path: Path | None = None, defaults: bool = False
) -> list[RestoredLimit]:
    """Undo a run that did not restore its limits (``pals gpu restore``).

    Without ``defaults``: put back every original saved in the state file, then clear it. With
    ``defaults``: set every GPU of the node (and every GPU in the state file) to NVML's default
    limit. Ignores ``CUDA_VISIBLE_DEVICES`` and observe-only mode: it is the administrator's undo.
    """
    state = RestoreStateFile(state_path or default_state_path())
    saved = state.load()
    nvml = load_nvml()
    init_nvml(nvml)
    try:
        access = WriteAccess(observe_only=False)
        gpus: dict[str, NVMLGPU] = {}
        for uuid in saved:
            h = nvml_call(nvml, f"open GPU {uuid}", nvml.nvmlDeviceGetHandleByUUID, uuid)
            gpus[uuid] = NVMLGPU(nvml, h, access=access)
        if defaults:
            for h in select_handles(nvml, None):
                gpu = NVMLGPU(nvml, h, access=access)
                gpus.setdefault(gpu.uuid, gpu)
        done: list[RestoredLimit] = []
        errors: list[GPUError] = []
        for uuid, gpu in gpus.items():  # keep going past a failure, report it at the end
            if defaults:
                limit_w, source = gpu.power_limit_constraints().default_w, "default"
            else:
                limit_w, source = saved[uuid].original_w, "saved"
            try:
                gpu.set_power_limit_w(limit_w)
            except GPUError as err:
                errors.append(err)
                continue
            done.append(RestoredLimit(uuid, gpu.index, gpu.name, limit_w, source))
        state.forget([r.uuid for r in done])
        if errors:
            raise errors[0]
        return done
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
