"""The GPU interface every backend implements (NVML on real nodes, the simulator here).

Units inside pals_core are watts, joules, seconds, MHz, degrees Celsius and bytes; a backend
converts its vendor's units (NVML: mW, mJ) at its edge.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from pals_core.errors import PowerLimitOutOfRangeError


@dataclass(frozen=True, slots=True)
class PowerLimitConstraints:
    """What a GPU accepts as its power limit."""

    min_w: float
    max_w: float
    default_w: float

    def check(self, gpu_index: int, power_w: float) -> None:
        """Raise :class:`PowerLimitOutOfRangeError` unless ``min_w <= power_w <= max_w``."""
        if not (self.min_w <= power_w <= self.max_w):
            raise PowerLimitOutOfRangeError(gpu_index, power_w, self.min_w, self.max_w)

    def clamp(self, power_w: float) -> float:
        return min(self.max_w, max(self.min_w, power_w))


class GPU(abc.ABC):
    """One GPU. Implementations refuse out-of-range limits and skip writes of unchanged values."""

    index: int
    uuid: str
    name: str

    @abc.abstractmethod
    def power_limit_constraints(self) -> PowerLimitConstraints: ...

    @abc.abstractmethod
    def get_power_limit_w(self) -> float: ...

    @abc.abstractmethod
    def set_power_limit_w(self, power_w: float) -> None:
        """Set the power limit; raises :class:`PowerLimitOutOfRangeError` outside constraints."""

    @abc.abstractmethod
    def get_power_w(self) -> float:
        """Instantaneous (or most recent averaged) board power draw."""

    @abc.abstractmethod
    def get_energy_j(self) -> float:
        """Cumulative energy since an arbitrary origin (monotonic non-decreasing)."""

    @abc.abstractmethod
    def get_sm_clock_mhz(self) -> float: ...

    @abc.abstractmethod
    def get_temperature_c(self) -> float: ...

    @abc.abstractmethod
    def get_memory_used_bytes(self) -> int: ...


class GPUGroup(Sequence[GPU]):
    """A node's GPUs. Remembers each GPU's limit before the first write and restores it on close.

    Backends build the group; the controller only uses this interface. Use it as a context manager
    (or call :meth:`close`) so the original limits come back whatever happens.
    """

    def __init__(self, gpus: Sequence[GPU]) -> None:
        self._gpus = list(gpus)
        self._original_limits_w: dict[int, float] = {}
        self._closed = False

    def __getitem__(self, i: int) -> GPU:  # type: ignore[override]
        return self._gpus[i]

    def __len__(self) -> int:
        return len(self._gpus)

    def __iter__(self) -> Iterator[GPU]:
        return iter(self._gpus)

    def set_power_limit_w(self, position: int, power_w: float) -> None:
        """Set the limit of the GPU at ``position``, remembering its original limit first."""
        gpu = self._gpus[position]
        gpu.power_limit_constraints().check(gpu.index, power_w)
        if position not in self._original_limits_w:
            original_w = gpu.get_power_limit_w()
            self._before_first_write(position, original_w)
            self._original_limits_w[position] = original_w
        gpu.set_power_limit_w(power_w)

    def _before_first_write(self, position: int, original_w: float) -> None:
        """Hook run once per GPU before its first write, with the limit it had; a backend can
        persist it (the NVML group saves it to a state file so a crash can be undone). If it
        raises, nothing is remembered and nothing is written."""

    def set_power_limits_w(self, limits_w: Sequence[float]) -> None:
        if len(limits_w) != len(self._gpus):
            raise ValueError(f"expected {len(self._gpus)} power limits, got {len(limits_w)}")
        for position, power_w in enumerate(limits_w):
            self.set_power_limit_w(position, power_w)

    def get_power_w(self) -> list[float]:
        return [gpu.get_power_w() for gpu in self._gpus]

    def get_energy_j(self) -> list[float]:
        return [gpu.get_energy_j() for gpu in self._gpus]

    def get_power_limits_w(self) -> list[float]:
        return [gpu.get_power_limit_w() for gpu in self._gpus]

    @property
    def changed_positions(self) -> list[int]:
        return sorted(self._original_limits_w)

    def restore(self) -> None:
        """Put back every limit this group changed. Safe to call more than once."""
        errors: list[BaseException] = []
        for position, power_w in sorted(self._original_limits_w.items()):
            try:
                self._gpus[position].set_power_limit_w(power_w)
            except Exception as err:  # keep restoring the others
                errors.append(err)
        self._original_limits_w.clear()
        if errors:
            raise errors[0]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.restore()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
