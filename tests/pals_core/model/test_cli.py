from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pals_core.cli import app
from pals_core.model import Profile
from pals_core.model.cli import default_caps_w

runner = CliRunner()


def test_profile_run_and_evaluate_on_the_simulator(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = runner.invoke(
        app,
        [
            "profile",
            "run",
            "--sim",
            "--model",
            "llama-3.1-8b",
            "--gpus",
            "1",
            "--caps",
            "250,450,700",
            "--batches",
            "8,32,128",
            "--warmup-s",
            "3",
            "--window-s",
            "5",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    profile = Profile.load(out)
    assert len(profile.points) == 9 and profile.metadata.model == "llama-3.1-8b"
    result = runner.invoke(app, ["profile", "evaluate", str(out), "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert "throughput_tok_s" in result.output and "3-fold" in result.output


def test_profile_run_refuses_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["profile", "run", "--sim", "--caps", "abc", "-o", str(tmp_path / "p.json")]
    )
    assert result.exit_code == 2 and "--caps must be a comma-separated list" in result.output
    result = runner.invoke(app, ["profile", "run", "-o", str(tmp_path / "p.json")])
    assert result.exit_code == 2 and "pals profile node" in result.output


def test_profile_node_refuses_bad_input(tmp_path: Path) -> None:
    out = str(tmp_path / "p.json")
    result = runner.invoke(app, ["profile", "node", "-o", out, "--model", "m", "--gpus", "tpu"])
    assert result.exit_code == 2 and "--gpus must be nvml or sim-node" in result.output
    result = runner.invoke(
        app, ["profile", "node", "-o", out, "--model", "m", "--gpus", "sim-node"]
    )
    assert result.exit_code == 2 and "needs --sim-node-url" in result.output


def test_default_caps_are_geometric_between_min_and_max() -> None:
    caps = default_caps_w(200.0, 700.0)
    assert caps[0] == 200.0 and caps[-1] == 700.0 and len(caps) == 5
    assert caps[1] - caps[0] < caps[-1] - caps[-2]
