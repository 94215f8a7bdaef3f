"""PALS in the experiments: its config overrides (``pals experiment paper --set``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pals_core.cli import app
from pals_core.control.pals import PalsConfig, PalsController
from pals_core.errors import ConfigurationError
from pals_core.experiments.pals_adapter import build_pals, pals_config
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
    ctrl = build_pals(path, num_gpus=1, itl_slo_s=0.1, overrides={"itl_edge_memory_s": 0.0})
    assert isinstance(ctrl, PalsController) and ctrl.config.itl_edge_memory_s == 0.0
    assert build_pals(path, num_gpus=1, itl_slo_s=0.1).config == PalsConfig()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("item", "message"),
    [("nope=1", "unknown PalsConfig field"), ("itl_setpoint", "FIELD=VALUE"),
     ("itl_setpoint=abc", "Python literal")],
)  # fmt: skip
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
