from __future__ import annotations

import time

import pytest

from pals_core.agent.runner import LATENESS_BOUNDS_S, ControlThread, next_slot


def test_a_tick_on_time_waits_for_the_next_slot() -> None:
    assert next_slot(1.0, 1.04, 0.1) == (pytest.approx(1.1), 0)


def test_a_tick_that_overran_its_slot_is_followed_at_once_by_the_next() -> None:
    slot_s, skipped = next_slot(1.0, 1.17, 0.1)  # the tick of slot 1.0 ended 70 ms into 1.1's
    assert (slot_s, skipped) == (pytest.approx(1.1), 0)
    assert slot_s < 1.17  # in the past: the next tick runs now, late by 70 ms


def test_slots_a_whole_tick_behind_are_skipped_not_raced_through() -> None:
    slot_s, skipped = next_slot(1.0, 1.36, 0.1)  # 1.1 and 1.2 are more than a tick behind
    assert (slot_s, skipped) == (pytest.approx(1.3), 2)
    assert 0 <= 1.36 - slot_s < 0.1


def test_ticks_are_counted_by_how_late_they_start() -> None:
    control = ControlThread([], 0.1, time.monotonic)
    for late_s in (-0.001, 0.0004, 0.004, 0.015, 0.08):
        control._count_lateness(late_s)
    assert control.late_after_s == pytest.approx(0.01)
    assert control.late_ticks == 2  # 15 and 80 ms
    assert control.max_lateness_s == pytest.approx(0.08)
    assert LATENESS_BOUNDS_S == (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
    assert control.lateness == [2, 0, 1, 0, 1, 0, 1, 0]  # early counts as on time
