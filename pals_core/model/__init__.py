"""Power-performance profiles of a node and the lightweight model fitted to them."""

from pals_core.model.performance import OperatingTable, PerformanceModel, Prediction
from pals_core.model.planner import Plan, PlanRequest, plan_operating_point
from pals_core.model.profile import NodeIdentity, Profile, ProfileMetadata, ProfilePoint
from pals_core.model.store import load_model_for_node
from pals_core.model.sweep import run_profile_sweep
from pals_core.model.validation import CrossValidation, QuantityError, cross_validate

__all__ = [
    "CrossValidation",
    "NodeIdentity",
    "OperatingTable",
    "PerformanceModel",
    "Plan",
    "PlanRequest",
    "Prediction",
    "Profile",
    "ProfileMetadata",
    "ProfilePoint",
    "QuantityError",
    "cross_validate",
    "load_model_for_node",
    "plan_operating_point",
    "run_profile_sweep",
]
