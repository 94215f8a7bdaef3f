"""``pals profile``: measure a node's power-performance profile and check the model fitted to it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pals_core.errors import ConfigurationError, PalsError

if TYPE_CHECKING:
    from pals_core.clock import Clock
    from pals_core.device.gpu import GPUGroup
    from pals_core.engine.base import ServingEngine
    from pals_core.model.profile import Profile, ProfileMetadata

profile_app = typer.Typer(
    name="profile",
    help="Measure a node's power-cap x batch-limit profile and evaluate the model fitted to it.",
    no_args_is_help=True,
)
console = Console()

DEFAULT_BATCHES = (8, 16, 32, 64, 128, 256)
DEFAULT_NUM_CAPS = 5


def parse_list(text: str, field: str, cast: type[float] | type[int]) -> list[float] | list[int]:
    try:
        values = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise ConfigurationError(
            f"{field} must be a comma-separated list of numbers, got {text!r}"
        ) from err
    if not values:
        raise ConfigurationError(f"{field} must list at least one value")
    return values


def default_caps_w(min_w: float, max_w: float, count: int = DEFAULT_NUM_CAPS) -> list[float]:
    """Geometrically spaced from the minimum to the maximum cap: denser where speed changes
    fastest (just above the minimum)."""
    return [float(round(c)) for c in np.geomspace(min_w, max_w, count)]


@profile_app.command("run")
def run(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the JSON.")],
    sim: Annotated[bool, typer.Option("--sim", help="Profile a simulated node.")] = False,
    model: Annotated[str, typer.Option(help="Model served (simulator catalog name).")] = (
        "llama-3.1-8b"
    ),
    gpu: Annotated[str, typer.Option(help="GPU type (simulator catalog name).")] = "H100-SXM",
    gpus: Annotated[int, typer.Option(help="Number of GPUs (tensor/expert parallel).")] = 1,
    caps: Annotated[
        str | None, typer.Option(help="Per-GPU caps in W, comma-separated (default: 5 geometric).")
    ] = None,
    batches: Annotated[str, typer.Option(help="Batch limits, comma-separated.")] = ",".join(
        str(b) for b in DEFAULT_BATCHES
    ),
    warmup_s: Annotated[float, typer.Option(help="Settling time before each window.")] = 10.0,
    window_s: Annotated[float, typer.Option(help="Measurement window per point.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Simulator seed (devices and requests).")] = 0,
    device_variation: Annotated[
        float, typer.Option(help="Simulated per-GPU power/speed deviation (fraction).")
    ] = 0.03,
) -> None:
    """Sweep caps x batch limits under a saturating load and save the profile."""
    from pals_core.model.profile import ProfileMetadata

    if not sim:
        console.print(
            "[red]`pals profile run` profiles a simulated node (--sim).[/red] For a real vLLM "
            "node: `pals profile node --model NAME -o FILE` (docs/vllm.md)."
        )
        raise typer.Exit(2)
    try:
        from pals_core.sim import SaturatingWorkload, build_sim_node

        node = build_sim_node(
            model=model,
            gpu=gpu,
            num_gpus=gpus,
            workload=SaturatingWorkload(),
            seed=seed,
            device_variation_frac=device_variation,
        )
        limits = node.gpus[0].power_limit_constraints()
        caps_w = (
            [float(c) for c in parse_list(caps, "--caps", float)]
            if caps
            else default_caps_w(limits.min_w, limits.max_w)
        )
        batch_list = [int(b) for b in parse_list(batches, "--batches", int)]
        metadata = ProfileMetadata(
            gpu_name=node.gpus[0].name,
            num_gpus=gpus,
            model=model,
            tensor_parallel=gpus,
            engine="vllm-sim",
            engine_version="sim",
            notes=f"simulated node, seed {seed}, "
            f"device variation {device_variation}, SaturatingWorkload",
        )
        profile = _sweep_with_progress(
            node.gpus,
            node.engine,
            node.clock,
            caps_w=caps_w,
            batches=batch_list,
            warmup_s=warmup_s,
            window_s=window_s,
            metadata=metadata,
        )
    except PalsError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    profile.save(output)
    console.print(f"saved {len(profile.points)} points to {output}")


def _sweep_with_progress(
    gpus: GPUGroup,
    engine: ServingEngine,
    clock: Clock,
    *,
    caps_w: list[float],
    batches: list[int],
    warmup_s: float,
    window_s: float,
    metadata: ProfileMetadata,
) -> Profile:
    """:func:`run_profile_sweep` over ``caps_w`` x ``batches`` with a progress bar naming the
    point being measured."""
    from pals_core.model.sweep import run_profile_sweep

    with Progress(
        TextColumn("[bold]profiling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("", total=len(caps_w) * len(batches))

        def on_point(done: int, total: int, point: object) -> None:
            cap = getattr(point, "cap_w", 0.0)
            batch = getattr(point, "batch", 0)
            progress.update(task, completed=done, description=f"cap {cap:.0f} W batch {batch}")

        return run_profile_sweep(
            gpus,
            engine,
            clock,
            caps_w=caps_w,
            batches=batches,
            warmup_s=warmup_s,
            window_s=window_s,
            metadata=metadata,
            progress=on_point,
        )


@profile_app.command("evaluate")
def evaluate(
    file: Annotated[Path, typer.Argument(help="A profile JSON written by `pals profile run`.")],
    folds: Annotated[
        int | None, typer.Option(help="k-fold cross-validation (default: leave-one-out).")
    ] = None,
) -> None:
    """Print the model's cross-validated relative error per quantity."""
    from pals_core.model.profile import Profile
    from pals_core.model.validation import cross_validate

    try:
        profile = Profile.load(file)
        cv = cross_validate(profile, folds=folds)
    except PalsError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    meta = profile.metadata
    console.print(
        f"{meta.model} on {meta.num_gpus}x {meta.gpu_name}: {len(profile.points)} points, "
        + ("leave-one-out" if folds is None else f"{cv.folds}-fold")
    )
    table = Table("quantity", "median rel. error", "max rel. error", "n")
    for qerr in cv.errors:
        table.add_row(
            qerr.quantity,
            f"{qerr.median_rel_error:.1%}",
            f"{qerr.max_rel_error:.1%}",
            str(qerr.n),
        )
    console.print(table)


def _register_node_command() -> None:
    from pals_core.model.node_cli import profile_node_command

    profile_app.command("node")(profile_node_command)


_register_node_command()
