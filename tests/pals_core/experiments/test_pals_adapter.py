"""PALS in the experiments: its config overrides (``pals experiment paper --set``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pals_core.cli import app
from pals_core.control.pals import PalsConfig, PalsController
from pals_core.errors import ConfigurationError, ProfileError, ProfileMismatchError
from pals_core.experiments.pals_adapter import build_pals, check_profile, pals_config, profile_path
from pals_core.experiments.scenarios import quick_matrix
from pals_core.model.profile import NodeIdentity, Profile
from pals_core.sim import simulator_fingerprint
from tests.pals_core.model.synthetic import synthetic_profile


def test_overrides_replace_fields_and_lists_become_tuples() -> None:
    config = pals_config({"itl_setpoint": 0.6, "itl_trim_bounds_w": [-100.0, 100.0]})
    assert config == PalsConfig(itl_setpoint=0.6, itl_trim_bounds_w=(-100.0, 100.0))
    assert pals_config({}) == PalsConfig()


def test_an_unknown_field_is_refused_naming_the_fields_allowed() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown PalsConfig field\(s\) nope; allowed:.*"):
        pals_config({"nope": 1})
    with pytest.raises(ConfigurationError, match="headroom"):
        pals_config({"headroom": 2.0})  # PalsConfig's own range check


def test_build_pals_applies_the_overrides(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    synthetic_profile().save(path)
    node = _identity(synthetic_profile())
    ctrl = build_pals(path, node=node, itl_slo_s=0.1, overrides={"itl_edge_memory_s": 0.0})
    assert isinstance(ctrl, PalsController) and ctrl.config.itl_edge_memory_s == 0.0
    assert build_pals(path, node=node, itl_slo_s=0.1).config == PalsConfig()  # type: ignore[attr-defined]


def _identity(profile: Profile) -> NodeIdentity:
    meta = profile.metadata
    return NodeIdentity(meta.gpu_name, meta.num_gpus, meta.model)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("model", "llama-3.1-70b", "model"),
        ("gpu_name", "NVIDIA A100-SXM4-80GB", "GPU type"),
        ("num_gpus", 4, "GPU count"),
    ],
)
def test_build_pals_refuses_a_profile_of_another_node(
    tmp_path: Path, field: str, value: object, named: str
) -> None:
    path = tmp_path / "profile.json"
    profile = synthetic_profile()
    profile.save(path)
    other = replace(_identity(profile), **{field: value})
    with pytest.raises(ProfileMismatchError, match=named):
        build_pals(path, node=other, itl_slo_s=0.1)


def test_a_bad_cached_profile_is_refused_early_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cached.json"
    path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(ProfileError, match=r"cached profile .*cached.json is unusable.*UTF-8"):
        check_profile(path, _identity(synthetic_profile()))
    path.write_text('{"format_version": 1, "metadata": {}, "points": []}')
    with pytest.raises(ProfileError, match="delete it to profile again"):
        check_profile(path, _identity(synthetic_profile()))


def test_the_profile_cache_is_keyed_by_the_simulator_and_the_sweep(tmp_path: Path) -> None:
    node = quick_matrix().nodes[0]
    a = profile_path(tmp_path, node, quick_matrix(), "nominal")
    assert a == profile_path(tmp_path, node, quick_matrix(), "nominal")
    other_sweep = replace(quick_matrix(), profile_batches=(8, 256))
    assert profile_path(tmp_path, node, other_sweep, "nominal") != a
    assert simulator_fingerprint("nominal") in {simulator_fingerprint()}
    with pytest.raises(ConfigurationError, match="unknown physics"):
        profile_path(tmp_path, node, quick_matrix(), "no-such-physics")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nope=1", "unknown PalsConfig field"),
        ("itl_setpoint", "FIELD=VALUE"),
        ("itl_setpoint=abc", "Python literal"),
    ],
)
def test_the_paper_command_refuses_a_bad_setting_before_running(
    item: str, message: str, tmp_path: Path
) -> None:
    out = tmp_path / "paper"
    result = CliRunner().invoke(
        app, ["experiment", "paper", "--output", str(out), "--quick", "--set", item]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()  # nothing was run or written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo", "loose"], "unknown SLO level 'loose'"),
        (["--node", "nope"], "unknown node"),
        (["--variant", "nope"], "unknown variant 'nope'"),
    ],
)
def test_the_paper_command_refuses_a_bad_slo_node_or_variant_before_running(
    args: list[str], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "paper"
    result = CliRunner().invoke(app, ["experiment", "paper", "--output", str(out), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()
