from __future__ import annotations

import pytest

from pals_core.errors import ConfigurationError
from pals_core.experiments.budgets import BudgetTrace, dynamic_hour


def test_trace_interpolates_ramps_and_holds_steps() -> None:
    trace = BudgetTrace((0.0, 10.0, 10.0, 20.0), (1.0, 1.0, 0.5, 0.7))
    assert trace.frac_at(-1.0) == 1.0
    assert trace.frac_at(9.99) == 1.0
    assert trace.frac_at(10.0) == 0.5  # the step's new value holds from its instant
    assert trace.frac_at(15.0) == pytest.approx(0.6)
    assert trace.frac_at(99.0) == 0.7
    with pytest.raises(ConfigurationError, match="non-decreasing"):
        BudgetTrace((1.0, 0.0), (1.0, 1.0))


def test_dynamic_hour_has_the_demand_response_steps_ramps_and_regulation() -> None:
    trace = dynamic_hour(seed=3)
    assert trace == dynamic_hour(seed=3)  # reproducible from the seed
    assert trace != dynamic_hour(seed=4)
    assert [trace.frac_at(t) for t in (100, 500, 900, 1500)] == [1.0, 0.70, 0.55, 0.85]
    assert trace.frac_at(1620 + 300 / 2) == pytest.approx(0.725, abs=1e-3)  # inside the ramp
    regulation = [trace.frac_at(t) for t in range(2520, 3420)]
    assert min(regulation) >= 0.65 - 1e-9 and max(regulation) <= 0.85 + 1e-9
    changes = [t for t in range(2521, 3420) if trace.frac_at(t) != trace.frac_at(t - 1)]
    assert 300 <= len(changes) <= 900  # a new value every 1 to 3 s
    assert trace.frac_at(3599) == 1.0
    assert trace.min_frac >= 0.55 - 1e-9
