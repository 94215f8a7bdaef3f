"""A fake NVML for tests: the real ``pynvml`` functions replaced by autospec mocks (so a call
with the wrong arguments fails as it would against the library) backed by a small device table.

Usable in-process (``install(monkeypatch.setattr)``) and in a subprocess (``install()``), where
every limit write is appended to ``log_path`` so the parent can see what happened.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import pynvml


# The real functions, captured before any test replaces them (so a second install specs them).
_REAL_FUNCTIONS: dict[str, Any] = {}


@dataclass
class FakeDevice:
    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    limit_mw: int = 700_000
    min_mw: int = 200_000
    max_mw: int = 700_000
    default_mw: int = 700_000
    power_mw: int = 350_123
    energy_mj: int | None = 1_234_567_890  # None: no energy counter (pre-Volta)
    sm_clock_mhz: int = 1980
    temperature_c: int = 45
    memory_used_bytes: int = 12_345_678_912
    mig_mode: int | None = 0  # None: MIG not supported
    fail: dict[str, int] = field(default_factory=dict)  # function name -> NVML error code


@dataclass(frozen=True)
class FakeHandle:
    index: int


class FakeNVML:
    """The device table plus the fake functions; ``calls`` lists every NVML call by name."""

    def __init__(
        self,
        devices: list[FakeDevice],
        *,
        can_write: bool = True,
        init_error: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.devices = devices
        self.can_write = can_write
        self.init_error = init_error
        self.log_path = log_path
        self.calls: list[str] = []
        self.fakes: dict[str, Any] = {}

    # -- helpers ------------------------------------------------------------------------------

    def _device(self, name: str, handle: FakeHandle) -> FakeDevice:
        self.calls.append(name)
        device = self.devices[handle.index]
        if name in device.fail:
            raise pynvml.NVMLError(device.fail[name])
        return device

    def writes(self) -> int:
        return self.calls.count("nvmlDeviceSetPowerManagementLimit")

    # -- the fake functions -------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.calls.append("nvmlShutdown")

    def nvmlDeviceGetCount(self) -> int:
        self.calls.append("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self.calls.append("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.devices):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return FakeHandle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeHandle:
        self.calls.append("nvmlDeviceGetHandleByUUID")
        for i, d in enumerate(self.devices):
            if d.uuid == uuid:
                return FakeHandle(i)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetIndex(self, handle: FakeHandle) -> int:
        self._device("nvmlDeviceGetIndex", handle)
        return handle.index

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        return self._device("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetName(self, handle: FakeHandle) -> bytes:
        return self._device("nvmlDeviceGetName", handle).name.encode()  # older bindings: bytes

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: FakeHandle) -> list[int]:
        d = self._device("nvmlDeviceGetPowerManagementLimitConstraints", handle)
        return [d.min_mw, d.max_mw]

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetPowerManagementDefaultLimit", handle).default_mw

    def nvmlDeviceGetPowerManagementLimit(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetPowerManagementLimit", handle).limit_mw

    def nvmlDeviceSetPowerManagementLimit(self, handle: FakeHandle, limit: int) -> None:
        d = self._device("nvmlDeviceSetPowerManagementLimit", handle)
        if not self.can_write:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)
        if not d.min_mw <= limit <= d.max_mw:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        d.limit_mw = limit
        if self.log_path is not None:
            with self.log_path.open("a") as f:
                f.write(f"set {d.uuid} {limit}\n")

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetPowerUsage", handle).power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeHandle) -> int:
        d = self._device("nvmlDeviceGetTotalEnergyConsumption", handle)
        if d.energy_mj is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return d.energy_mj

    def nvmlDeviceGetClockInfo(self, handle: FakeHandle, type: int) -> int:
        d = self._device("nvmlDeviceGetClockInfo", handle)
        assert type == pynvml.NVML_CLOCK_SM
        return d.sm_clock_mhz

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        d = self._device("nvmlDeviceGetTemperature", handle)
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return d.temperature_c

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle, version: Any = None) -> SimpleNamespace:
        d = self._device("nvmlDeviceGetMemoryInfo", handle)
        return SimpleNamespace(used=d.memory_used_bytes, total=80 * 2**30)

    def nvmlDeviceGetMigMode(self, device: FakeHandle) -> list[int]:
        d = self._device("nvmlDeviceGetMigMode", device)
        if d.mig_mode is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [d.mig_mode, d.mig_mode]

    NAMES = (
        "nvmlInit",
        "nvmlShutdown",
        "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex",
        "nvmlDeviceGetHandleByUUID",
        "nvmlDeviceGetIndex",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetName",
        "nvmlDeviceGetPowerManagementLimitConstraints",
        "nvmlDeviceGetPowerManagementDefaultLimit",
        "nvmlDeviceGetPowerManagementLimit",
        "nvmlDeviceSetPowerManagementLimit",
        "nvmlDeviceGetPowerUsage",
        "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetClockInfo",
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetMigMode",
    )

    def install(self, setter: Callable[[Any, str, Any], None] = setattr) -> FakeNVML:
        """Replace each real function with an autospec of it that runs the fake."""
        for name in self.NAMES:
            real = _REAL_FUNCTIONS.setdefault(name, getattr(pynvml, name))
            fake = mock.create_autospec(real, side_effect=getattr(self, name))
            self.fakes[name] = fake
            setter(pynvml, name, fake)
        return self


def two_h100s(**kwargs: Any) -> list[FakeDevice]:
    return [
        FakeDevice(uuid="GPU-aaaaaaaa-0000-0000-0000-000000000000", **kwargs),
        FakeDevice(uuid="GPU-bbbbbbbb-1111-1111-1111-111111111111", **kwargs),
    ]
