"""The physics variants behind ``build_sim_node(physics=...)`` and the simulator fingerprint."""

from __future__ import annotations

import pytest

from pals_core.errors import ConfigurationError
from pals_core.sim import (
    PHYSICS_VARIANTS,
    SaturatingWorkload,
    UnknownPhysicsError,
    build_sim_node,
    simulator_fingerprint,
)
from pals_core.sim import fitted_constants as fc
from pals_core.sim.server import SimNodeConfig


def test_variants_are_named_and_an_unknown_name_lists_them() -> None:
    assert PHYSICS_VARIANTS == ("nominal", "pessimistic")
    with pytest.raises(UnknownPhysicsError, match="nominal, pessimistic") as err:
        build_sim_node(physics="optimistic")
    assert isinstance(err.value, ConfigurationError)
    with pytest.raises(UnknownPhysicsError):
        simulator_fingerprint("optimistic")
    with pytest.raises(UnknownPhysicsError):
        SimNodeConfig(physics="optimistic")


def test_variants_differ_under_a_deep_cap_and_agree_at_full_power() -> None:
    def tput(physics: str, cap_w: float) -> float:
        node = build_sim_node(
            workload=SaturatingWorkload(), batch_limit=256, seed=2, physics=physics
        )
        node.gpus.set_power_limit_w(0, cap_w)
        node.clock.sleep(20.0)
        start = node.engine.metrics().generation_tokens_total
        node.clock.sleep(20.0)
        return (node.engine.metrics().generation_tokens_total - start) / 20.0

    assert tput("nominal", 700.0) == pytest.approx(tput("pessimistic", 700.0), rel=0.02)
    assert tput("pessimistic", 250.0) < tput("nominal", 250.0)


def test_fingerprint_is_stable_per_variant_and_follows_the_constants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nominal = simulator_fingerprint()
    assert nominal == simulator_fingerprint("nominal")
    assert len(nominal) == 16 and int(nominal, 16) >= 0
    assert simulator_fingerprint("pessimistic") != nominal
    monkeypatch.setattr(fc, "CHAT_PROMPT_MEAN_TOK", fc.CHAT_PROMPT_MEAN_TOK + 1)
    assert simulator_fingerprint() != nominal
