from __future__ import annotations

import math
from dataclasses import fields, replace

import pytest

from pals_core.control.pals_state import Mode, PalsState, evolve
from pals_core.engine.base import Histogram


def _distinct_state() -> PalsState:
    """A state whose every field holds a value of its own (none left at its default)."""
    hist = Histogram((0.1, 0.2), (1, 2), 3, 0.4)
    return replace(
        PalsState(mode=Mode.TRACKING),
        throughput_scale=1.1,
        power_scale=0.9,
        cap_trim_w=-12.0,
        load_trim=1.2,
        budget_scale=0.95,
        gpu_weights=(1.02, 0.98),
        decide_time_s=3.0,
        decide_energy_j=(10.0, 11.0),
        overdraw_from_s=3.1,
        overdraw_from_energy_j=(12.0, 13.0),
        running_sum=55.0,
        running_n=4,
        last_change_s=2.0,
        last_cut_s=1.5,
        metrics_time_s=3.05,
        metrics_seen_s=3.0,
        healthy_periods=2,
        itl_ref=hist,
        ttft_ref=hist,
        itl_ref_time_s=2.5,
        itl_hold_until_s=9.0,
        itl_edge_cap_w=400.0,
        itl_edge_until_s=60.0,
        qos_windows_seen=7,
        qos_windows_violated=1,
        qos_guard_w=40.0,
        qos_guard_until_s=120.0,
        qos_guard_step_ratio=1.2,
        qos_guard_step_cap_w=300.0,
        qos_guard_last_step_w=40.0,
        qos_guard_futile_until_s=150.0,
        budget_share_bound_w=300.0,
        target_tok_s=900.0,
        warmup_estimate_tok_s=880.0,
        started_s=0.5,
    )


def _same(a: PalsState, b: PalsState) -> bool:
    for f in fields(PalsState):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if not (x is y or x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))):
            return False
    return True


def test_every_field_of_the_distinct_state_differs_from_the_default() -> None:
    base, state = PalsState(mode=Mode.WARMUP), _distinct_state()
    same = {f.name for f in fields(PalsState) if getattr(base, f.name) == getattr(state, f.name)}
    assert same <= {"demand"}  # the demand estimator's state is copied like the rest


@pytest.mark.parametrize("name", [f.name for f in fields(PalsState)])
def test_evolve_gives_what_replace_gives(name: str) -> None:
    state = _distinct_state()
    value = PalsState(mode=Mode.FAILSAFE).__getattribute__(name)
    assert _same(evolve(state, **{name: value}), replace(state, **{name: value}))
    assert _same(evolve(state), state)
    assert evolve(state) is not state


def test_evolve_leaves_the_old_state_alone_and_refuses_unknown_fields() -> None:
    state = _distinct_state()
    new = evolve(state, running_n=9, mode=Mode.DEGRADED)
    assert (new.running_n, new.mode, state.running_n, state.mode) == (
        9,
        Mode.DEGRADED,
        4,
        Mode.TRACKING,
    )
    with pytest.raises(AttributeError):
        evolve(state, no_such_field=1)
