"""The node side's exception tree. Vendor errors are wrapped here (``raise ... from err``)."""

from __future__ import annotations


class PalsError(Exception):
    """Base of every error pals_core raises on purpose."""


class ConfigurationError(PalsError, ValueError):
    """An input or setting is invalid; the message names it and what is allowed."""


class GPUError(PalsError):
    """A GPU operation failed."""


class GPUInitError(GPUError):
    """The GPU management library could not be loaded or initialised."""


class GPUNotSupportedError(GPUError):
    """The GPU or driver does not support the operation (e.g. no energy counter, MIG devices)."""


class GPUPermissionError(GPUError):
    """The process may not change GPU settings (power limits need root or CAP_SYS_ADMIN)."""


class GPUNotFoundError(GPUError):
    """No GPU with that index, or an invalid CUDA_VISIBLE_DEVICES entry."""


class PowerLimitOutOfRangeError(GPUError, ValueError):
    """A requested power limit lies outside the GPU's constraints."""

    def __init__(self, gpu_index: int, requested_w: float, min_w: float, max_w: float) -> None:
        self.gpu_index = gpu_index
        self.requested_w = requested_w
        self.min_w = min_w
        self.max_w = max_w
        super().__init__(
            f"power limit {requested_w:.1f} W for GPU {gpu_index} is outside its allowed range "
            f"[{min_w:.1f}, {max_w:.1f}] W"
        )


class EngineError(PalsError):
    """The serving engine could not be reached or refused a request."""


class UnknownNameError(ConfigurationError):
    """A model or GPU name the simulator's catalog does not know; the message lists the known."""


class TraceFormatError(ConfigurationError):
    """A workload trace file is malformed; the message names the file, line and column."""


class ProfileError(PalsError):
    """A power-performance profile is unusable (unreadable, empty or too sparse to fit)."""


class ProfileMismatchError(ProfileError):
    """A profile was taken on a different node (GPU type or count, or model) than this one."""

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        super().__init__(
            "the profile does not describe this node: "
            + "; ".join(differences)
            + " (profile this node with `pals profile run`)"
        )
