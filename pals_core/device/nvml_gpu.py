"""The NVML binding and one NVML GPU. The only module that imports ``pynvml``.

NVML speaks milliwatts and millijoules; everything leaving this module is in watts and joules.
Every NVML error becomes a typed :mod:`pals_core.errors` exception (``raise ... from err``).

Writing a power limit needs root or ``CAP_SYS_ADMIN``. The first refused write is remembered for
the whole session (all GPUs share one :class:`WriteAccess`) and explained; later writes raise the
same explanation without asking NVML again. In observe-only mode (``PALS_OBSERVE_ONLY=1``) every
change of a limit is refused with :class:`GPUObserveOnlyError`; reads work as usual.

A node's GPUs as a group (saving and restoring the original limits) are in
:mod:`pals_core.device.nvml`.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

from pals_core.device.gpu import GPU, PowerLimitConstraints
from pals_core.errors import (
    GPUError,
    GPUInitError,
    GPUNotFoundError,
    GPUNotSupportedError,
    GPUObserveOnlyError,
    GPUPermissionError,
)

log = logging.getLogger(__name__)

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


def nvml_call[T](nvml: ModuleType, what: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, its ``NVMLError`` translated (see :func:`translate_error`)."""
    try:
        return fn(*args)
    except nvml.NVMLError as err:
        raise translate_error(nvml, err, what) from err


def nvml_text(value: str | bytes) -> str:
    """A name or UUID as text (older bindings return bytes)."""
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
        self.uuid = nvml_text(self._read("read the UUID", nvml.nvmlDeviceGetUUID))
        self.name = nvml_text(self._read("read the name", nvml.nvmlDeviceGetName))
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
        return nvml_call(
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
