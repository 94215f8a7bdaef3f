"""Find the model for a node: load its profile, refuse one taken elsewhere, never guess.

A missing profile returns ``None``: the runtime then either profiles the node first
(:func:`~pals_core.model.sweep.run_profile_sweep`, then ``Profile.save``) or starts
:class:`~pals_core.control.pals.PalsController` without a model, which runs the documented safe
default (maximum caps, default batch limit, budget kept by proportional cap cuts). A profile for
another GPU type, GPU count or model raises :class:`~pals_core.errors.ProfileMismatchError`
naming every difference: driving a node with another node's curves would miss both targets and
budgets without anyone noticing.
"""

from __future__ import annotations

from pathlib import Path

from pals_core.model.performance import PerformanceModel
from pals_core.model.profile import NodeIdentity, Profile


def load_model_for_node(path: str | Path, node: NodeIdentity) -> PerformanceModel | None:
    """The fitted model of the profile at ``path`` if it describes ``node``; None if absent."""
    if not Path(path).exists():
        return None
    profile = Profile.load(path)
    profile.check_matches(node)
    return PerformanceModel.fit(profile)
