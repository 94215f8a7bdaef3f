"""A short stable hash of every constant that shapes simulated behaviour (per physics variant).

Caches of simulated results (e.g. the experiment's offline profiles) are keyed by it, so a change
of fitted constants, DVFS constants, datasheet figures, sensor model or workload shape is never
answered from a profile made by an older simulator. ``MODEL_REVISION`` is bumped by hand when
the simulator's code changes behaviour with the same constants.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from pals_core.sim import fitted_constants as fc
from pals_core.sim import sensor
from pals_core.sim.dvfs import check_physics, dvfs_params
from pals_core.sim.hardware import GPU_NAMES, gpu_spec
from pals_core.sim.lengths import chat_lengths
from pals_core.sim.models import MODEL_NAMES, model_profile

MODEL_REVISION = 2
"""1: the landed simulator; 2: per-GPU DVFS with voltage floor and bandwidth knee, NVML sensor."""


def _constants(physics: str) -> dict[str, object]:
    models = {}
    for name in MODEL_NAMES:
        profile = model_profile(name)
        facts = {f.name: getattr(profile, f.name) for f in dataclasses.fields(profile)}
        facts["deployments"] = {
            f"{gpu}x{n}": fit.as_tuple() for (gpu, n), fit in sorted(profile.deployments.items())
        }
        models[name] = facts
    return {
        "revision": MODEL_REVISION,
        "physics": physics,
        "gpus": {name: dataclasses.asdict(gpu_spec(name)) for name in GPU_NAMES},
        "dvfs": {name: dataclasses.asdict(dvfs_params(name, physics)) for name in GPU_NAMES},
        "models": models,
        "chat_prompt_mean_tok": fc.CHAT_PROMPT_MEAN_TOK,
        "chat_lengths": repr(chat_lengths(1.0, 1.0)),
        "sensor": [
            sensor.UPDATE_PERIOD_S,
            sensor.SAMPLE_WINDOW_S,
            sensor.POWER_RESOLUTION_W,
            sensor.ENERGY_RESOLUTION_J,
        ],
    }


def simulator_fingerprint(physics: str = "nominal") -> str:
    """16 hex digits over every behaviour-shaping constant of physics variant ``physics``."""
    check_physics(physics)
    text = json.dumps(_constants(physics), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
