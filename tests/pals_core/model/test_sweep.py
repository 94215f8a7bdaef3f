from __future__ import annotations

from pathlib import Path

import pytest

from pals_core.errors import ConfigurationError
from pals_core.model import (
    PerformanceModel,
    Profile,
    ProfileMetadata,
    cross_validate,
    run_profile_sweep,
)
from pals_core.sim import SaturatingWorkload, build_sim_node


def sweep(seed: int = 3) -> Profile:
    node = build_sim_node(
        "llama-3.1-8b",
        "H100-SXM",
        1,
        workload=SaturatingWorkload(),
        seed=seed,
        device_variation_frac=0.03,
    )
    node.gpus.set_power_limit_w(0, 650.0)
    node.engine.set_batch_limit(100)
    done: list[int] = []
    profile = run_profile_sweep(
        node.gpus,
        node.engine,
        node.clock,
        caps_w=[200.0, 274.0, 374.0, 512.0, 700.0],
        batches=[8, 16, 32, 64, 128, 256],
        warmup_s=5.0,
        window_s=10.0,
        metadata=ProfileMetadata("?", 1, "llama-3.1-8b", 1),
        progress=lambda k, total, _p: done.append(k),
    )
    assert done == list(range(1, 31))
    assert node.gpus[0].get_power_limit_w() == 650.0 and node.engine.get_batch_limit() == 100
    return profile


@pytest.fixture(scope="module")
def profile() -> Profile:
    return sweep()


def test_sweep_measures_every_point_in_steady_state(profile: Profile, tmp_path: Path) -> None:
    assert len(profile.points) == 30
    meta = profile.metadata
    assert meta.num_gpus == 1 and meta.caps_w[0] == 200.0 and meta.batches[-1] == 256
    assert meta.created_utc and meta.window_s == 10.0
    for p in profile.points:
        assert p.saturated and p.mean_running == pytest.approx(p.batch, rel=0.05)
        assert p.power_w <= p.cap_w * 1.01  # energy-counter power respects the cap
        assert p.throughput_tok_s > 0 and 0 < p.itl_p50_s <= p.itl_p99_s
    by = {(p.cap_w, p.batch): p for p in profile.points}
    assert by[(700.0, 256)].throughput_tok_s > by[(700.0, 8)].throughput_tok_s * 5
    assert by[(200.0, 256)].throughput_tok_s < by[(700.0, 256)].throughput_tok_s
    profile.save(tmp_path / "p.json")
    assert Profile.load(tmp_path / "p.json") == profile


def test_model_cross_validated_error_on_the_simulator(profile: Profile) -> None:
    cv = cross_validate(profile)
    assert cv.for_quantity("throughput_tok_s").median_rel_error < 0.05
    assert cv.for_quantity("power_w").median_rel_error < 0.05
    assert cv.for_quantity("itl_p99_s").median_rel_error < 0.25  # bucketed histogram quantiles


def test_model_from_one_device_predicts_another(profile: Profile) -> None:
    other = PerformanceModel.fit(sweep(seed=9))
    model = PerformanceModel.fit(profile)
    for cap, batch in ((300.0, 48), (450.0, 100), (600.0, 200)):
        a, b = model.predict(cap, batch), other.predict(cap, batch)
        assert a.throughput_tok_s == pytest.approx(b.throughput_tok_s, rel=0.12)
        assert a.power_w == pytest.approx(b.power_w, rel=0.08)


def test_sweep_refuses_caps_outside_the_gpu_range() -> None:
    node = build_sim_node("llama-3.1-8b", "H100-SXM", 1, workload=SaturatingWorkload())
    with pytest.raises(ConfigurationError, match="caps_w value 800"):
        run_profile_sweep(
            node.gpus,
            node.engine,
            node.clock,
            caps_w=[800.0],
            batches=[8],
            metadata=ProfileMetadata("?", 1, "m", 1),
        )
