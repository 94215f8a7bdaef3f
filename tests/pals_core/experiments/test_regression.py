"""Regression floors of the headline on the real simulator, over several seeds.

The floors sit just under the figures measured on this code (``docs/results.md``): a change that
loses a twentieth of PALS's efficiency, or adds violated windows, fails here, not in the next
paper run. Measured with the mean output length that counts the requests in flight as censored
(``pals_core.control.demand.mean_output_tok``) and an ITL offset that comes back down to the plan
while the QoS budget is spent (llama-3.1-8b, 1xH100, quick profile, 90 s, seeds 1-3): PALS over
stock 1.81 / 1.81 / 1.73 at 40 % load and 1.26 / 1.28 / 1.16 at 80 %, 0 and 2 violated windows
over the three seeds (seeds 4-5: 1.80 / 1.77 and 1.21 / 1.17, 0 and 1). With the offset frozen
while spent: 1.76 / 1.73 / 1.69 at 40 %. With the naive mean before that (tokens per
finished-or-running request, 0.6x the true mean 20 s after a start): 1.61 / 1.76 / 1.66 and
1.23 / 1.32 / 1.30, with 1 and 5 violated windows: the censored mean buys QoS at 80 % load with
some efficiency.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pals_core.experiments.pals_adapter import ensure_profile
from pals_core.experiments.runner import run_scenario
from pals_core.experiments.scenarios import DENSE_SMALL, Scenario, quick_matrix

SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_profile(DENSE_SMALL, quick_matrix(), tmp_path_factory.mktemp("profile"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("load", "min_gain", "mean_gain", "max_violated"),
    [(0.4, 1.68, 1.73, 1), (0.8, 1.12, 1.19, 3)],
)
def test_pals_efficiency_and_qos_floors_over_seeds(
    profile: Path, load: float, min_gain: float, mean_gain: float, max_violated: int
) -> None:
    gains, violated = [], 0
    for seed in SEEDS:
        scenario = Scenario(DENSE_SMALL, load, "none", None, seed, 90.0, 20.0)
        stock = run_scenario(scenario, "stock")
        pals = run_scenario(scenario, "pals", profile_path=profile)
        gains.append(pals.tokens_per_j / stock.tokens_per_j)
        violated += pals.qos_violated
        assert pals.throughput_tok_s >= 0.95 * stock.throughput_tok_s  # serves the same load
    assert min(gains) >= min_gain and float(np.mean(gains)) >= mean_gain, gains
    assert violated <= max_violated
