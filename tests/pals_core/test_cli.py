from typer.testing import CliRunner

from pals_core.cli import app


def test_pals_help_and_version() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "power" in result.output.lower()
    assert runner.invoke(app, ["version"]).exit_code == 0
    assert "PALS_CONTROL_PERIOD_S" in runner.invoke(app, ["config"], env={"COLUMNS": "200"}).output


def test_sim_node_refuses_unknown_names_before_serving() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["sim-node", "--model", "gpt-9"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "llama-3.1-8b" in result.output
    result = runner.invoke(
        app, ["sim-node", "--model", "llama-3.1-70b", "--num-gpus", "2"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert "H100-SXM x4" in result.output
    result = runner.invoke(app, ["sim-node", "--load", "sometimes"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "poisson" in result.output
