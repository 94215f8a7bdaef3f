"""The NVML backend: this node's real NVIDIA GPUs. The only module that imports ``pynvml``.

NVML speaks milliwatts and millijoules; everything leaving this module is in watts and joules.
Every NVML error becomes a typed :mod:`pals_core.errors` exception (``raise ... from err``).

Writing a power limit needs root or ``CAP_SYS_ADMIN``. The first refused write is remembered for
the whole session (all GPUs share one :class:`WriteAccess`) and explained; later writes raise the
same explanation without asking NVML again. In observe-only mode (``PALS_OBSERVE_ONLY=1``) every
change of a limit is refused with :class:`GPUObserveOnlyError` (the group refuses before it
remembers anything); reads work as usual.

Undoing changes: :class:`NVMLGPUGroup` remembers each GPU's original limit before its first write
(that is :class:`GPUGroup`'s job) and, before that write, saves it to a small JSON state file
(``<PALS_DATA_DIR>/gpu-restore.json``). Closing the group, normal interpreter exit (atexit) and
SIGTERM/SIGINT put the originals back; after a crash (``kill -9``), ``pals gpu restore`` reads the
state file and does it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from pals_core.device.gpu import GPU, GPUGroup, PowerLimitConstraints
from pals_core.errors import (
    GPUError,
    GPUInitError,
    GPUNotFoundError,
    GPUNotSupportedError,
    GPUObserveOnlyError,
    GPUPermissionError,
)

log = logging.getLogger(__name__)

STATE_FILE_NAME = "gpu-restore.json"

PERMISSION_HELP = (
    "changing GPU power limits needs root or CAP_SYS_ADMIN. Either run the agent as root, or "
    "grant the capability to this Python once: "
    "`sudo setcap cap_sys_admin+ep $(readlink -f $(which python3))`, and have an administrator "
    "enable persistence mode (`sudo nvidia-smi -pm 1`); or run observe-only with "
    "PALS_OBSERVE_ONLY=1 (reads power, never writes limits)"
)

# NVML error code names -> project error types. Looked up by name so an older binding without
# one of the constants still works.
_ERROR_TYPES: dict[str, type[GPUError]] = {
    "NVML_ERROR_NO_PERMISSION": GPUPermissionError,
    "NVML_ERROR_NOT_SUPPORTED": GPUNotSupportedError,
    "NVML_ERROR_FUNCTION_NOT_FOUND": GPUNotSupportedError,
    "NVML_ERROR_LIBRARY_NOT_FOUND": GPUInitError,
    "NVML_ERROR_DRIVER_NOT_LOADED": GPUInitError,
    "NVML_ERROR_UNINITIALIZED": GPUInitError,
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH": GPUInitError,
    "NVML_ERROR_INVALID_ARGUMENT": GPUNotFoundError,
    "NVML_ERROR_NOT_FOUND": GPUNotFoundError,
    "NVML_ERROR_GPU_NOT_FOUND": GPUNotFoundError,
}


def load_nvml() -> ModuleType:
    """Import ``pynvml`` (lazily: importing pals_core never needs it)."""
    try:
        with warnings.catch_warnings():
            # The `pynvml` distribution warns that it now redirects to nvidia-ml-py.
            warnings.simplefilter("ignore", FutureWarning)
            import pynvml
    except ImportError as err:
        raise GPUInitError(
            "the NVML Python bindings are not installed (pip install nvidia-ml-py)"
        ) from err
    return pynvml


def translate_error(nvml: ModuleType, err: BaseException, what: str) -> GPUError:
    """The project error for an ``NVMLError`` raised while doing ``what``."""
    code = getattr(err, "value", None)
    for name, error_type in _ERROR_TYPES.items():
        if code is not None and code == getattr(nvml, name, object()):
            return error_type(f"{what}: {err}")
    return GPUError(f"{what}: {err} (NVML error {code})")


def _call[T](nvml: ModuleType, what: str, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except nvml.NVMLError as err:
        raise translate_error(nvml, err, what) from err


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def init_nvml(nvml: ModuleType) -> None:
    """``nvmlInit`` with an error that says what is missing."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as err:
        raise GPUInitError(
            f"NVML is unavailable ({err}): no NVIDIA driver on this machine? "
            "Use the simulator (`pals sim-node`) to run without a GPU"
        ) from err


class WriteAccess:
    """Whether this process may write power limits, shared by a session's GPUs so a missing
    privilege is found once and explained once."""

    def __init__(self, observe_only: bool) -> None:
        self.observe_only = observe_only
        self.refusal: str | None = None

    def check(self, gpu_index: int) -> None:
        """Raise, without touching NVML, when a write is known to be refused."""
        if self.observe_only:
            raise GPUObserveOnlyError(
                f"GPU {gpu_index}: not changing the power limit in observe-only mode "
                "(PALS_OBSERVE_ONLY=1); unset it to let pals_core control the GPUs"
            )
        if self.refusal is not None:
            raise GPUPermissionError(self.refusal)

    def refuse(self, gpu_index: int, err: BaseException) -> GPUPermissionError:
        self.refusal = f"GPU {gpu_index}: NVML refused to set the power limit ({err}); " + (
            PERMISSION_HELP
        )
        log.error("%s", self.refusal)
        return GPUPermissionError(self.refusal)


class NVMLGPU(GPU):
    """One physical GPU. ``index`` is NVML's index (as ``nvidia-smi`` shows it)."""

    def __init__(
        self,
        nvml: ModuleType,
        handle: Any,
        *,
        access: WriteAccess,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nvml = nvml
        self._handle = handle
        self._access = access
        self._monotonic_s = monotonic_s
        self.index = int(self._read("read the index", nvml.nvmlDeviceGetIndex))
        self.uuid = _text(self._read("read the UUID", nvml.nvmlDeviceGetUUID))
        self.name = _text(self._read("read the name", nvml.nvmlDeviceGetName))
        min_mw, max_mw = self._read(
            "read the power limit constraints", nvml.nvmlDeviceGetPowerManagementLimitConstraints
        )
        default_mw = self._read(
            "read the default power limit", nvml.nvmlDeviceGetPowerManagementDefaultLimit
        )
        self._constraints = PowerLimitConstraints(min_mw / 1000, max_mw / 1000, default_mw / 1000)
        self._lock = threading.Lock()
        self._last_sample: tuple[float, float] | None = None  # (time_s, power_w)
        self._integrated_j = 0.0
        try:
            self._read("read the energy counter", nvml.nvmlDeviceGetTotalEnergyConsumption)
            self.energy_source = "counter"
        except GPUNotSupportedError:
            # Pre-Volta GPUs have no energy counter. Integrating power samples is only as good
            # as the sampling: the control loop reads every tick (0.1 s), which is fine for
            # steady loads but misses spikes shorter than that.
            self.energy_source = "integrated"
            log.warning(
                "GPU %d (%s) has no energy counter; energy is integrated from power samples "
                "taken whenever power or energy is read",
                self.index,
                self.name,
            )

    def _read[T](self, what: str, fn: Callable[..., T], *args: Any) -> T:
        return _call(
            self._nvml, f"GPU {getattr(self, 'index', '?')}: {what}", fn, self._handle, *args
        )

    def power_limit_constraints(self) -> PowerLimitConstraints:
        return self._constraints

    def get_power_limit_w(self) -> float:
        return self._get_power_limit_mw() / 1000

    def _get_power_limit_mw(self) -> int:
        return int(self._read("read the power limit", self._nvml.nvmlDeviceGetPowerManagementLimit))

    def set_power_limit_w(self, power_w: float) -> None:
        """Refuse out-of-range values before touching NVML; skip unchanged values (1 mW
        resolution); refuse changes in observe-only mode or after a refused write."""
        self._constraints.check(self.index, power_w)
        target_mw = round(power_w * 1000)
        if self._get_power_limit_mw() == target_mw:
            return
        self._access.check(self.index)
        try:
            self._nvml.nvmlDeviceSetPowerManagementLimit(self._handle, target_mw)
        except self._nvml.NVMLError as err:
            error = translate_error(self._nvml, err, f"GPU {self.index}: set the power limit")
            if isinstance(error, GPUPermissionError):
                raise self._access.refuse(self.index, err) from err
            raise error from err

    def get_power_w(self) -> float:
        power_w = self._read("read the power draw", self._nvml.nvmlDeviceGetPowerUsage) / 1000
        if self.energy_source == "integrated":
            self._integrate(power_w)
        return float(power_w)

    def _integrate(self, power_w: float) -> None:
        now_s = self._monotonic_s()
        with self._lock:
            if self._last_sample is not None:
                then_s, then_w = self._last_sample
                self._integrated_j += max(0.0, now_s - then_s) * (then_w + power_w) / 2
            self._last_sample = (now_s, power_w)

    def get_energy_j(self) -> float:
        """Energy since an arbitrary origin: NVML's counter (since the driver loaded) or, where
        there is none, the trapezoidal integral of the power samples taken so far."""
        if self.energy_source == "counter":
            return float(
                self._read(
                    "read the energy counter", self._nvml.nvmlDeviceGetTotalEnergyConsumption
                )
                / 1000
            )
        self.get_power_w()
        with self._lock:
            return self._integrated_j

    def get_sm_clock_mhz(self) -> float:
        return float(
            self._read(
                "read the SM clock", self._nvml.nvmlDeviceGetClockInfo, self._nvml.NVML_CLOCK_SM
            )
        )

    def get_temperature_c(self) -> float:
        return float(
            self._read(
                "read the temperature",
                self._nvml.nvmlDeviceGetTemperature,
                self._nvml.NVML_TEMPERATURE_GPU,
            )
        )

    def get_memory_used_bytes(self) -> int:
        return int(self._read("read the memory use", self._nvml.nvmlDeviceGetMemoryInfo).used)


# -- the restore state file ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SavedLimit:
    uuid: str
    index: int
    name: str
    original_w: float
    default_w: float
    pid: int


class RestoreStateFile:
    """Original limits saved before the first write, so a crashed run can be undone.

    Keyed by GPU UUID (stable whatever ``CUDA_VISIBLE_DEVICES`` says). An entry already present
    is kept: it came from an earlier run that did not finish cleanly, and its value is the one
    the GPU had before anybody changed it. A run removes only its own entries (by pid) when it
    restores them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, SavedLimit]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise GPUError(f"cannot read the GPU restore state file {self.path}: {err}") from err
        return {uuid: SavedLimit(uuid=uuid, **entry) for uuid, entry in data["gpus"].items()}

    def _write(self, entries: dict[str, SavedLimit]) -> None:
        try:
            self._write_atomically(entries)
        except OSError as err:
            raise GPUError(
                f"cannot save the original GPU power limits to {self.path} ({err}); nothing was "
                "written to the GPUs. Point PALS_DATA_DIR at a writable folder"
            ) from err

    def _write_atomically(self, entries: dict[str, SavedLimit]) -> None:
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": 1,
            "gpus": {
                e.uuid: {
                    "index": e.index,
                    "name": e.name,
                    "original_w": e.original_w,
                    "default_w": e.default_w,
                    "pid": e.pid,
                }
                for e in entries.values()
            },
        }
        fd, tmp = tempfile.mkstemp(prefix=".gpu-restore-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remember(self, gpu: GPU, original_w: float) -> None:
        entries = self.load()
        if gpu.uuid in entries:
            log.warning(
                "GPU %d (%s) has a saved original limit of %.1f W from an earlier run that did "
                "not restore it; keeping that value (`pals gpu restore` puts it back)",
                gpu.index,
                gpu.uuid,
                entries[gpu.uuid].original_w,
            )
            return
        entries[gpu.uuid] = SavedLimit(
            uuid=gpu.uuid,
            index=gpu.index,
            name=gpu.name,
            original_w=original_w,
            default_w=gpu.power_limit_constraints().default_w,
            pid=os.getpid(),
        )
        self._write(entries)

    def forget(self, uuids: Sequence[str], *, pid: int | None = None) -> None:
        """Drop the entries of ``uuids`` (only those written by ``pid`` when given)."""
        entries = self.load()
        kept = {
            u: e for u, e in entries.items() if u not in uuids or (pid is not None and e.pid != pid)
        }
        if kept != entries:
            self._write(kept)


# -- the group -----------------------------------------------------------------------------------


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


# -- building a group ----------------------------------------------------------------------------


def parse_visible_devices(value: str | None) -> list[int | str] | None:
    """``CUDA_VISIBLE_DEVICES`` as a list of indices and UUIDs (``None``: unset, all GPUs).

    Unlike CUDA, which silently stops at the first invalid entry, an invalid entry is an error.
    Integer entries are taken as NVML (PCI bus order) indices, which match CUDA's only with
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` or on a node whose GPUs are all the same model.
    """
    if value is None:
        return None
    entries = [e.strip() for e in value.split(",")]
    if value.strip() == "" or value.strip() == "-1":
        raise GPUNotFoundError(
            f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU; unset it or list GPUs to control"
        )
    parsed: list[int | str] = []
    for entry in entries:
        if entry.isdigit():
            parsed.append(int(entry))
        elif entry.startswith("MIG-"):
            raise GPUNotSupportedError(
                f"CUDA_VISIBLE_DEVICES entry {entry!r} is a MIG instance; power limits apply to "
                "whole GPUs, so list the parent GPU (index or GPU-UUID) instead"
            )
        elif entry.startswith("GPU-") and len(entry) > 4:
            parsed.append(entry)
        else:
            raise GPUNotFoundError(
                f"CUDA_VISIBLE_DEVICES entry {entry!r} is invalid: expected a GPU index (e.g. 0) "
                "or a GPU UUID (GPU-...), separated by commas"
            )
    if len(set(parsed)) != len(parsed):
        raise GPUNotFoundError(f"CUDA_VISIBLE_DEVICES={value!r} lists a GPU twice")
    return parsed


def _select_handles(nvml: ModuleType, entries: list[int | str] | None) -> list[Any]:
    count = int(_call(nvml, "count GPUs", nvml.nvmlDeviceGetCount))
    if count == 0:
        raise GPUNotFoundError("NVML sees no GPU on this node")

    def handle(i: int) -> Any:
        return _call(nvml, f"open GPU {i}", nvml.nvmlDeviceGetHandleByIndex, i)

    if entries is None:
        return [handle(i) for i in range(count)]
    uuids: list[str] | None = None
    selected: list[int] = []
    for entry in entries:
        if isinstance(entry, int):
            if entry >= count:
                raise GPUNotFoundError(
                    f"CUDA_VISIBLE_DEVICES entry {entry} is out of range: this node has {count} "
                    f"GPU(s), indices 0-{count - 1}"
                )
            selected.append(entry)
            continue
        if uuids is None:  # CUDA accepts any unique UUID prefix, so compare with them all
            uuids = [
                _text(_call(nvml, "read UUID", nvml.nvmlDeviceGetUUID, handle(i)))
                for i in range(count)
            ]
        matches = [i for i, u in enumerate(uuids) if u.startswith(entry)]
        if len(matches) != 1:
            problem = "matches no GPU" if not matches else "matches several GPUs"
            raise GPUNotFoundError(
                f"CUDA_VISIBLE_DEVICES entry {entry!r} {problem}; GPUs here: {', '.join(uuids)}"
            )
        selected.append(matches[0])
    if len(set(selected)) != len(selected):
        raise GPUNotFoundError("CUDA_VISIBLE_DEVICES names the same GPU twice")
    return [handle(i) for i in selected]


def _refuse_mig(nvml: ModuleType, handle: Any, where: str) -> None:
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError as err:
        if isinstance(translate_error(nvml, err, ""), GPUNotSupportedError):
            return  # pre-Ampere GPUs have no MIG at all
        raise translate_error(nvml, err, f"{where}: read the MIG mode") from err
    if current == nvml.NVML_DEVICE_MIG_ENABLE:
        raise GPUNotSupportedError(
            f"{where} is in MIG mode: pals_core controls whole GPUs (a power limit applies to "
            "every MIG instance at once). Disable MIG (`sudo nvidia-smi -i <index> -mig 0`) or "
            "leave this GPU out with CUDA_VISIBLE_DEVICES"
        )


def default_state_path() -> Path:
    from pals_core.settings import get_settings

    return get_settings().data_dir / STATE_FILE_NAME


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
        handles = _select_handles(nvml, entries)
        access = WriteAccess(observe_only)
        gpus = []
        for h in handles:
            gpu = NVMLGPU(nvml, h, access=access)
            _refuse_mig(nvml, h, f"GPU {gpu.index} ({gpu.uuid})")
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
            h = _call(nvml, f"open GPU {uuid}", nvml.nvmlDeviceGetHandleByUUID, uuid)
            gpus[uuid] = NVMLGPU(nvml, h, access=access)
        if defaults:
            for h in _select_handles(nvml, None):
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
