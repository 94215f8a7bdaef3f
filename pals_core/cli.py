"""The ``pals`` command line (node side)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from pals_core import __version__
from pals_core.model.cli import profile_app

app = typer.Typer(
    name="pals",
    help=(
        "PALS: power-aware LLM serving. Jointly controls GPU power caps (NVML) and the serving "
        "batch size (vLLM max_num_seqs) to meet throughput at the best tokens per joule within a "
        "moving power budget."
    ),
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
app.add_typer(profile_app)


def _register_subapps() -> None:
    from pals_core.experiments.cli import experiment_app
    from pals_core.sim.cli import app as sim_app

    app.add_typer(sim_app, name="sim")
    app.add_typer(experiment_app, name="experiment")


_register_subapps()


@app.command()
def config() -> None:
    """Show the effective settings (PALS_* env or .env)."""
    from pals_core.settings import PalsSettings, get_settings

    settings = get_settings()
    table = Table("setting", "env var", "value", "meaning")
    for name, field in PalsSettings.model_fields.items():
        table.add_row(
            name, f"PALS_{name.upper()}", str(getattr(settings, name)), field.description or ""
        )
    console.print(table)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


def main() -> None:
    app()
