"""The budget the controller gets from the trajectory: look-ahead, no limit, infeasible,
failsafe past the end or the lease, and the ramp back."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pals_core.agent.trajectory import (
    BudgetFollower,
    BudgetSource,
    FollowerConfig,
    TrajectoryError,
    parse_trajectory,
)

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
T0_S = T0.timestamp()


def _doc(*segments: tuple[float, float, Any], version: int = 1, node_id: int = 7) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "version_id": version,
        "created_at": T0.isoformat(),
        "segments": [
            {
                "start": (T0 + timedelta(seconds=a)).isoformat(),
                "end": (T0 + timedelta(seconds=b)).isoformat(),
                "power_w": p,
            }
            for a, b, p in segments
        ],
    }


def _follower(**kw: Any) -> BudgetFollower:
    config = {"min_power_w": 200.0, "max_power_w": 700.0, "lead_s": 1.0, "lease_s": 60.0}
    return BudgetFollower(FollowerConfig(**(config | kw)))


def test_a_fall_known_ahead_reaches_the_controller_lead_s_early() -> None:
    follower = _follower()
    follower.accept(parse_trajectory(_doc((0, 20, 600.0), (20, 100, 400.0)), 7), T0_S)
    assert follower.budget(T0_S + 18.9).power_w == 600.0
    early = follower.budget(T0_S + 19.1)  # 0.9 s before the fall
    assert early.power_w == 400.0 and early.source is BudgetSource.TRAJECTORY
    assert early.allocation_w == 400.0


def test_no_limit_means_the_node_maximum() -> None:
    follower = _follower()
    follower.accept(parse_trajectory(_doc((0, 10, None), (10, 20, 900.0)), 7), T0_S)
    for t in (1.0, 12.0):
        budget = follower.budget(T0_S + t)
        assert budget.power_w == 700.0 and budget.source is BudgetSource.UNCONSTRAINED


def test_a_budget_under_the_minimum_runs_at_the_minimum_and_says_infeasible() -> None:
    follower = _follower()
    follower.accept(parse_trajectory(_doc((0, 100, 150.0)), 7), T0_S)
    budget = follower.budget(T0_S + 1)
    assert budget.power_w == 200.0 and budget.infeasible and budget.allocation_w == 150.0


def test_past_the_end_falls_to_the_failsafe_never_above_the_last_budget() -> None:
    follower = _follower(failsafe_w=500.0)
    follower.accept(parse_trajectory(_doc((0, 10, 300.0)), 7), T0_S)
    assert follower.budget(T0_S + 5).power_w == 300.0
    past = follower.budget(T0_S + 9.5)  # the window [9.5, 10.5] leaves the trajectory
    assert past.source is BudgetSource.FAILSAFE and past.power_w == 300.0  # not 500


def test_lease_then_contact_resumes_without_a_jump() -> None:
    follower = _follower(lease_s=5.0, failsafe_w=250.0, resume_ramp_w_per_s=100.0)
    follower.accept(parse_trajectory(_doc((0, 3600, 600.0)), 7), T0_S)
    budgets = [follower.budget(T0_S + 0.5 * i) for i in range(20)]  # every 0.5 s, 0 to 9.5 s
    assert budgets[8].power_w == 600.0  # 4 s: within the lease
    lost = budgets[11]  # 5.5 s without contact
    assert lost.source is BudgetSource.FAILSAFE and lost.power_w == 250.0
    follower.contact(T0_S + 10)
    ramp = [follower.budget(T0_S + 10 + 0.5 * i).power_w for i in range(10)]
    steps = [b - a for a, b in itertools.pairwise([250.0, *ramp])]
    assert max(steps) <= 50.0 + 1e-9  # 100 W/s, every 0.5 s: no jump
    assert ramp[-1] == 600.0
    follower.contact(T0_S + 14)
    assert follower.budget(T0_S + 15).source is BudgetSource.TRAJECTORY


def test_before_any_trajectory_the_node_is_unconstrained_until_the_lease() -> None:
    follower = _follower(lease_s=5.0)
    assert follower.budget(T0_S).source is BudgetSource.NONE
    assert follower.budget(T0_S + 6).source is BudgetSource.FAILSAFE


def test_an_older_version_is_ignored() -> None:
    follower = _follower()
    assert follower.accept(parse_trajectory(_doc((0, 10, 500.0), version=3), 7), T0_S)
    assert not follower.accept(parse_trajectory(_doc((0, 10, 300.0), version=2), 7), T0_S)
    assert follower.budget(T0_S + 1).power_w == 500.0


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "trajectory"),
        (_doc((0, 10, 100.0), node_id=8), "node_id"),
        (_doc((0, 10, 100.0), version=0), "version_id"),
        (_doc((0, 10, -5.0)), "segments.0.power_w"),
        (_doc((0, 10, "lots")), "segments.0.power_w"),
        (_doc((0, 10, 1e9)), "segments.0.power_w"),
        (_doc((10, 5, 100.0)), "segments.0.end"),
        (_doc((0, 10, 100.0), (5, 20, 100.0)), "segments.1.start"),
        (
            {**_doc(), "segments": [{"start": "yesterday", "end": "x", "power_w": 1}]},
            "segments.0.start",
        ),
        (
            {**_doc(), "segments": [{"start": "2026-12-02T12:00:00", "end": "x"}]},
            "segments.0.start",
        ),
    ],
)
def test_a_bad_trajectory_is_refused_naming_the_field(doc: Any, field: str) -> None:
    with pytest.raises(TrajectoryError) as err:
        parse_trajectory(doc, 7)
    assert err.value.field == field


def test_the_first_trajectory_of_a_connection_is_taken_whatever_its_version() -> None:
    follower = _follower()
    follower.accept(parse_trajectory(_doc((0, 10, 500.0), version=40), 7), T0_S)
    rebuilt = parse_trajectory(_doc((0, 10, 300.0), version=2), 7)  # a rebuilt gateway database
    assert follower.accept(rebuilt, T0_S, any_version=True)
    assert follower.budget(T0_S + 1).power_w == 300.0
