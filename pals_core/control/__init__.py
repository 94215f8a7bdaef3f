"""Node control: the policy contract, the runtime loop, the PALS controller and its baselines."""

from pals_core.control.policy import Action, GPUReading, Observation, Policy
from pals_core.control.runtime import LoopConfig, Sample, run_control_loop

__all__ = [
    "Action",
    "GPUReading",
    "LoopConfig",
    "Observation",
    "Policy",
    "Sample",
    "run_control_loop",
]
