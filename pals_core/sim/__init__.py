"""The calibrated GPU + vLLM simulator: simulated GPUs and a continuous-batching engine on a
virtual clock. See docs/simulator.md for the physics and the calibration."""

from pals_core.sim.clock import RealTimePacer, SimClock
from pals_core.sim.dvfs import PHYSICS_VARIANTS, UnknownPhysicsError
from pals_core.sim.engine import SimEngine
from pals_core.sim.fingerprint import simulator_fingerprint
from pals_core.sim.gpu import SimGPU
from pals_core.sim.hardware import GPU_NAMES, GPUSpec, gpu_spec
from pals_core.sim.lengths import LogNormalLengths, RequestLengths, chat_lengths
from pals_core.sim.models import MODEL_NAMES, DeploymentFit, ModelProfile, model_profile
from pals_core.sim.node import SimNode, build_sim_node
from pals_core.sim.request import SimRequest
from pals_core.sim.trace import TraceWorkload
from pals_core.sim.workload import (
    Arrival,
    BurstyWorkload,
    DiurnalWorkload,
    PoissonWorkload,
    SaturatingWorkload,
    Workload,
)

__all__ = [
    "GPU_NAMES",
    "MODEL_NAMES",
    "PHYSICS_VARIANTS",
    "Arrival",
    "BurstyWorkload",
    "DeploymentFit",
    "DiurnalWorkload",
    "GPUSpec",
    "LogNormalLengths",
    "ModelProfile",
    "PoissonWorkload",
    "RealTimePacer",
    "RequestLengths",
    "SaturatingWorkload",
    "SimClock",
    "SimEngine",
    "SimGPU",
    "SimNode",
    "SimRequest",
    "TraceWorkload",
    "UnknownPhysicsError",
    "Workload",
    "build_sim_node",
    "chat_lengths",
    "gpu_spec",
    "model_profile",
    "simulator_fingerprint",
]
