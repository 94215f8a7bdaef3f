"""``pals experiment ...``: the paper experiment from the command line."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer
from rich.console import Console

experiment_app = typer.Typer(
    help="Reproduce the paper's comparison of PALS with its baselines in the simulator.",
    no_args_is_help=True,
)
console = Console()


@experiment_app.command("paper")
def paper(
    output: Path = typer.Option(..., "--output", "-o", help="Folder for results.json and plots."),
    quick: bool = typer.Option(False, "--quick", help="The reduced matrix (CI: under a minute)."),
    seeds: int | None = typer.Option(
        None, "--seeds", min=1, help="Seeds per scenario (default: 3 full, 1 quick)."
    ),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="Worker processes."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print each run as it ends."),
) -> None:
    """Run every controller on the scenario matrix; write results.json and PNG plots."""
    from pals_core.experiments.paper import SERIES_FILE, run_paper
    from pals_core.experiments.plots import plot_dynamic_power, plot_efficiency_vs_load
    from pals_core.experiments.report import print_report
    from pals_core.experiments.scenarios import full_matrix, quick_matrix

    matrix = quick_matrix(seeds or 1) if quick else full_matrix(seeds or 3)
    n = len(matrix.scenarios())
    console.print(f"{'quick' if quick else 'full'} matrix: {n} scenario-seeds, {jobs} jobs")
    seen = [0]

    def progress(message: str) -> None:
        seen[0] += 1
        if verbose or seen[0] % 50 == 0:
            console.print(message)

    result = run_paper(
        matrix,
        output,
        jobs=jobs,
        progress=progress,
        command="pals experiment " + shlex.join(sys.argv[2:]) if len(sys.argv) > 1 else "",
    )
    runs = json.loads(result.results_path.read_text())["runs"]
    series = json.loads((output / SERIES_FILE).read_text())
    plots = plot_efficiency_vs_load(runs, output) + plot_dynamic_power(series, output)
    print_report(Console(width=max(console.width, 170)), runs, result.summary, result.wall_s)
    console.print(f"wrote {result.results_path} and {len(plots)} plots")


@experiment_app.command("report")
def report(
    results: Path = typer.Argument(..., help="A results.json written by `pals experiment paper`."),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown tables instead."),
) -> None:
    """Print the tables and goals of a saved run (no simulation)."""
    from pals_core.experiments.markdown import goals_markdown, scenario_markdown
    from pals_core.experiments.report import print_report

    doc = json.loads(results.read_text())
    if markdown:
        typer.echo(goals_markdown(doc["summary"]))
        typer.echo("")
        typer.echo(scenario_markdown(doc["runs"]))
        return
    wide = Console(width=max(console.width, 170))
    print_report(wide, doc["runs"], doc["summary"], doc["meta"]["wall_s"])
