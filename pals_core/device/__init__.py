"""GPU devices: one interface (:class:`GPU`, :class:`GPUGroup`), NVML and simulated backends."""

from pals_core.device.gpu import GPU, GPUGroup, PowerLimitConstraints

__all__ = ["GPU", "GPUGroup", "PowerLimitConstraints"]
