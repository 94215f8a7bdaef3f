"""``pals experiment ...``: the paper experiment from the command line."""

from __future__ import annotations

import json
import shlex
import sys
from ast import literal_eval
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pals_core.experiments.scenarios import Matrix

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
        None, "--seeds", min=1, help="Seeds per scenario (default: 5 full, 1 quick)."
    ),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="Worker processes."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print each run as it ends."),
    settings: list[str] = typer.Option(
        [], "--set", help="PalsConfig FIELD=VALUE (a Python literal) for the PALS runs; repeatable."
    ),
    nodes: list[str] = typer.Option(
        [],
        "--node",
        help="Only this node of the matrix (e.g. llama-3.1-8b@1xH100-SXM); repeatable.",
    ),
    slo: str = typer.Option(
        "relaxed", "--slo", help="The MLPerf SLO level of the matrix: relaxed or tight."
    ),
    physics: str = typer.Option(
        "nominal",
        "--physics",
        help="The simulator's physics variant of the matrix (nominal, pessimistic).",
    ),
    variants: list[str] = typer.Option(
        [],
        "--variant",
        help="Also run the matrix under this variant (pessimistic, tight-slo) into "
        "OUTPUT/variants/NAME; its summary goes to results.json variants.NAME. Repeatable.",
    ),
) -> None:
    """Run every controller on the scenario matrix; write results.json and PNG plots."""
    from pals_core.experiments.paper import add_variant, run_paper

    overrides = _parse_settings(settings) or None
    matrix, variant_matrices = _matrices(quick, seeds, nodes, slo, physics, variants)
    console.print(
        f"{'quick' if quick else 'full'} matrix: {len(matrix.scenarios())} scenario-seeds, "
        f"{jobs} jobs"
    )
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
        pals_overrides=overrides,
    )
    for name, variant in variant_matrices.items():
        console.print(f"variant {name}")
        done = run_paper(
            variant,
            output / "variants" / name,
            jobs=jobs,
            progress=progress,
            command=f"variant {name}",
            pals_overrides=overrides,
        )
        add_variant(result.results_path, name, done.summary)
    _plots_and_report(output, result.results_path, result.summary, result.wall_s)


def _matrices(
    quick: bool,
    seeds: int | None,
    nodes: list[str],
    slo: str,
    physics: str,
    variants: list[str],
) -> tuple[Matrix, dict[str, Matrix]]:
    """The matrix the options select, and each ``--variant``'s; a typer error naming the option
    for an unknown node, SLO level or variant (before any run)."""
    from pals_core.errors import ConfigurationError
    from pals_core.experiments.scenarios import (
        full_matrix,
        only_nodes,
        quick_matrix,
        variant_matrix,
    )
    from pals_core.experiments.slos import latency_slo

    matrix = quick_matrix(seeds or 1) if quick else full_matrix(seeds or 5)
    try:
        matrix = only_nodes(matrix, nodes) if nodes else matrix
        latency_slo(matrix.nodes[0].model, slo)  # an unknown level is refused before any run
        matrix = replace(matrix, slo=slo)
    except ConfigurationError as err:
        raise typer.BadParameter(str(err), param_hint="--node/--slo") from err
    from pals_core.sim import PHYSICS_VARIANTS

    if physics not in PHYSICS_VARIANTS:
        raise typer.BadParameter(
            f"unknown physics {physics!r}; allowed: {', '.join(PHYSICS_VARIANTS)}",
            param_hint="--physics",
        )
    matrix = replace(matrix, physics=physics)
    try:
        return matrix, {name: variant_matrix(matrix, name) for name in variants}
    except ConfigurationError as err:
        raise typer.BadParameter(str(err), param_hint="--variant") from err


def _plots_and_report(
    output: Path, results_path: Path, summary: dict[str, Any], wall_s: float
) -> None:
    from pals_core.experiments.paper import SERIES_FILE
    from pals_core.experiments.plots import (
        plot_dynamic_power,
        plot_efficiency_vs_load,
        plot_pareto,
    )
    from pals_core.experiments.report import print_report

    doc = json.loads(results_path.read_text())
    runs = doc["runs"]
    series = json.loads((output / SERIES_FILE).read_text())
    plots = plot_efficiency_vs_load(runs, output) + plot_dynamic_power(series, output)
    plots += plot_pareto(runs, output, doc.get("static_front"))
    print_report(Console(width=max(console.width, 170)), runs, summary, wall_s)
    console.print(f"wrote {results_path} and {len(plots)} plots")


def _parse_settings(settings: list[str]) -> dict[str, Any]:
    """``--set FIELD=VALUE`` items -> {field: value}, checked against PalsConfig (typer error on
    a malformed item or an unknown field, naming what is allowed)."""
    from pals_core.errors import ConfigurationError
    from pals_core.experiments.pals_adapter import pals_config

    out: dict[str, Any] = {}
    for item in settings:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{item!r}: expected FIELD=VALUE", param_hint="--set")
        try:
            out[name.strip()] = literal_eval(text.strip())
        except (ValueError, SyntaxError) as err:
            raise typer.BadParameter(
                f"{item!r}: VALUE must be a Python literal (number, tuple, None ...)",
                param_hint="--set",
            ) from err
    try:
        pals_config(out)
    except (ConfigurationError, TypeError) as err:
        raise typer.BadParameter(str(err), param_hint="--set") from err
    return out


@experiment_app.command("add-variant")
def add_variant_command(
    results: Path = typer.Argument(..., help="The results.json to add the variant to."),
    name: str = typer.Argument(..., help="The variant's name (pessimistic, tight-slo)."),
    variant_results: Path = typer.Argument(..., help="A results.json run under that variant."),
) -> None:
    """Store another run's summary as ``variants.NAME`` of RESULTS (a variant run on its own,
    e.g. ``--variant`` of a subset, or at another time)."""
    from pals_core.experiments.paper import add_variant

    doc = json.loads(variant_results.read_text())
    add_variant(results, name, doc["summary"])
    typer.echo(f"added {name} from {variant_results} to {results}")


@experiment_app.command("report")
def report(
    results: Path = typer.Argument(..., help="A results.json written by `pals experiment paper`."),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown tables instead."),
) -> None:
    """Print the tables and goals of a saved run (no simulation)."""
    from pals_core.experiments.markdown import (
        decomposition_markdown,
        goals_markdown,
        headline_markdown,
        matched_qos_markdown,
        scenario_markdown,
        static_front_markdown,
    )
    from pals_core.experiments.report import print_report

    doc = json.loads(results.read_text())
    if markdown:
        typer.echo(goals_markdown(doc["summary"]))
        for name, summary in doc.get("variants", {}).items():
            typer.echo(f"\nVariant {name}:\n")
            typer.echo(goals_markdown(summary))
        typer.echo("")
        typer.echo(headline_markdown(doc["summary"]))
        typer.echo("")
        typer.echo(decomposition_markdown(doc["summary"]))
        typer.echo("")
        typer.echo(matched_qos_markdown(doc["summary"]))
        typer.echo("")
        if doc["summary"].get("efficiency_vs_static_front_at_pals_qos_by_scenario"):
            typer.echo(static_front_markdown(doc["summary"]))
            typer.echo("")
        typer.echo(scenario_markdown(doc["runs"]))
        return
    wide = Console(width=max(console.width, 170))
    print_report(wide, doc["runs"], doc["summary"], doc["meta"]["wall_s"])
