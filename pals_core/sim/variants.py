"""Physics variants of the simulator and its fingerprint.

STAND-IN, replaced by the sim branch at merge: only ``"nominal"`` physics exists here, and the
fingerprint hashes the fitted constants. The experiments rely on exactly these names and
signatures (``PHYSICS_VARIANTS``, ``build_sim_node(physics=...)``,
``simulator_fingerprint``).
"""

from __future__ import annotations

import hashlib

from pals_core.errors import ConfigurationError

PHYSICS_VARIANTS: tuple[str, ...] = ("nominal",)


def check_physics(physics: str) -> str:
    """``physics`` if it names a variant; a :class:`ConfigurationError` listing them if not."""
    if physics not in PHYSICS_VARIANTS:
        raise ConfigurationError(
            f"unknown physics {physics!r}; allowed: {', '.join(PHYSICS_VARIANTS)}"
        )
    return physics


def simulator_fingerprint(physics: str = "nominal") -> str:
    """A stable hash of the simulator's constants under ``physics`` (a profile made by another
    simulator must not be reused)."""
    from pals_core.sim import fitted_constants

    check_physics(physics)
    values = {
        name: getattr(fitted_constants, name)
        for name in sorted(dir(fitted_constants))
        if name.isupper()
    }
    blob = repr((physics, sorted(values.items())))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
