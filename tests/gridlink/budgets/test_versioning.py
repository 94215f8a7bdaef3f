"""same_from: when a new plan says nothing the latest version does not (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridlink.budgets.versioning import allocate_plan, same_from
from gridlink.core.allocator import NodeSpec
from gridlink.core.planner import Segment

T = datetime(2026, 7, 1, tzinfo=UTC)
NODES = [NodeSpec(node_id=1, min_w=1000, max_w=5000, tier=1)]


def seg(h0: float, h1: float, limit_kw: float, event: int | None = None) -> Segment:
    return Segment(
        start=T + timedelta(hours=h0),
        end=T + timedelta(hours=h1),
        facility_limit_kw=limit_kw,
        gpu_budget_kw=limit_kw - 1,
        contributing_event_ids=() if event is None else (event,),
        binding_event_id=event,
    )


def at(h: float) -> datetime:
    return T + timedelta(hours=h)


def test_a_slid_window_in_the_no_event_state_is_not_news() -> None:
    old = allocate_plan([seg(0, 2, 3.0, 7), seg(2, 24, 100.0)], NODES)
    new = allocate_plan([seg(1, 2, 3.0, 7), seg(2, 25, 100.0)], NODES)
    assert same_from(old, new, at(1), at(25))


def test_a_new_event_in_the_slid_part_is_news() -> None:
    old = allocate_plan([seg(0, 24, 100.0)], NODES)
    new = allocate_plan([seg(1, 24.5, 100.0), seg(24.5, 25, 2.5, 9)], NODES)
    assert not same_from(old, new, at(1), at(25))


def test_a_version_ending_inside_an_event_knows_nothing_after_it() -> None:
    old = allocate_plan([seg(0, 23, 100.0), seg(23, 24, 3.0, 7)], NODES)
    new = allocate_plan([seg(1, 23, 100.0), seg(23, 24, 3.0, 7), seg(24, 25, 100.0)], NODES)
    assert not same_from(old, new, at(1), at(25))
    assert same_from(old, new, at(1), at(24))


def test_a_changed_allocation_is_news() -> None:
    old = allocate_plan([seg(0, 24, 3.0, 7)], NODES)
    other = [NodeSpec(node_id=1, min_w=1000, max_w=5000, tier=1, demand_w=1500)]
    assert not same_from(old, allocate_plan([seg(0, 24, 3.0, 7)], other), at(0), at(24))
    assert same_from(old, allocate_plan([seg(0, 24, 3.0, 7)], NODES), at(0), at(24))


def test_round_mw_is_pythons_round_including_ties() -> None:
    import numpy as np

    from gridlink.budgets.versioning import round_mw

    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.uniform(0, 1e7, 20_000),
            np.array([0.0005, 0.0015, 2.675, 1.0005, 1234.5675, 0.1 + 0.2, 5e6 + 0.0025]),
            np.arange(0, 50, 0.0005),
        ]
    )
    assert round_mw(values).tolist() == [round(v, 3) for v in values.tolist()]
