"""The ``pals`` command line (node side)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pals_core import __version__
from pals_core.agent.cli import agent as agent_command
from pals_core.agent.cli import fleet as fleet_command
from pals_core.device.cli import gpu_app
from pals_core.engine.base import DEFAULT_MAX_NUM_SEQS
from pals_core.experiments.cli import experiment_app
from pals_core.model.cli import profile_app
from pals_core.proxy.cli import proxy as proxy_command
from pals_core.sim.cli import app as sim_app

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
app.add_typer(gpu_app, name="gpu")
app.add_typer(sim_app, name="sim")
app.add_typer(profile_app)
app.add_typer(experiment_app, name="experiment")
app.command("agent")(agent_command)
app.command("fleet")(fleet_command)
app.command("proxy")(proxy_command)
console = Console()


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


class LoadPattern(StrEnum):
    none = "none"
    poisson = "poisson"
    bursty = "bursty"
    diurnal = "diurnal"


@app.command("sim-node")
def sim_node(
    model: Annotated[str, typer.Option(help="Simulated model (see MODEL_NAMES).")] = "llama-3.1-8b",
    gpu: Annotated[str, typer.Option(help="Simulated GPU type.")] = "H100-SXM",
    num_gpus: Annotated[
        int | None,
        typer.Option(min=1, help="GPUs (tensor/expert parallel); default: the fewest calibrated."),
    ] = None,
    load: Annotated[
        LoadPattern, typer.Option(help="Background synthetic load besides HTTP requests.")
    ] = LoadPattern.none,
    rate: Annotated[float, typer.Option(help="Background load rate (requests/s).")] = 2.0,
    batch_limit: Annotated[
        int,
        typer.Option(
            "--max-num-seqs", "--batch-limit", min=1, help="Initial max_num_seqs (as vLLM's)."
        ),
    ] = DEFAULT_MAX_NUM_SEQS,
    physics: Annotated[
        str, typer.Option(help="Simulator physics variant: nominal or pessimistic.")
    ] = "nominal",
    seed: Annotated[int, typer.Option(help="Random seed of the simulation.")] = 1,
    served_model_name: Annotated[
        str | None, typer.Option(help="Model name the API shows (default: --model).")
    ] = None,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8100,
) -> None:
    """Serve a simulated vLLM node paced to real time: OpenAI-compatible completions (SSE
    streaming), vLLM's /metrics, and the PALS admin endpoints for batch and power limits."""
    import uvicorn

    from pals_core.errors import ConfigurationError
    from pals_core.sim import GPU_NAMES, MODEL_NAMES, model_profile
    from pals_core.sim.server import SimNodeConfig, build_node, create_app

    if model not in MODEL_NAMES:
        raise typer.BadParameter(f"choose one of {', '.join(MODEL_NAMES)}", param_hint="--model")
    if gpu not in GPU_NAMES:
        raise typer.BadParameter(f"choose one of {', '.join(GPU_NAMES)}", param_hint="--gpu")
    supported = model_profile(model).supported()
    if num_gpus is None:
        counts = [n for g, n in supported if g == gpu]
        if not counts:
            options = ", ".join(f"{g} x{n}" for g, n in supported)
            raise typer.BadParameter(
                f"{model} is calibrated only for {options}", param_hint="--gpu"
            )
        num_gpus = min(counts)
    try:
        config = SimNodeConfig(
            model=model,
            gpu=gpu,
            num_gpus=num_gpus,
            load=load.value,
            rate_req_s=rate,
            seed=seed,
            batch_limit=batch_limit,
            served_model_name=served_model_name,
            physics=physics,
        )
        node = build_node(config)  # here, so a bad combination is a one-line error, not a crash
    except ConfigurationError as err:
        raise typer.BadParameter(str(err)) from err
    console.print(
        f"pals sim-node: {config.model_name} on {num_gpus}x {gpu}, load {load.value}"
        + (f" at {rate} req/s" if load is not LoadPattern.none else "")
        + f", listening on http://{host}:{port} (/v1/completions, /metrics, /pals/batch_limit)"
    )
    app_ = create_app(config, node_factory=lambda _config: node)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


def main() -> None:
    app()
