"""``pals gpu``: look at this node's GPUs, set a power limit by hand, undo changes.

Exit status: 0 on success, 2 when NVML is unavailable (no driver), 1 on any other GPU error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pals_core.errors import GPUInitError, PalsError

gpu_app = typer.Typer(
    help="This node's NVIDIA GPUs (NVML): list, set a power limit, restore limits.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)


@contextmanager
def _gpu_errors() -> Iterator[None]:
    """One clear line per failure instead of a traceback."""
    try:
        yield
    except GPUInitError as err:
        err_console.print(f"error: {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from err
    except PalsError as err:
        err_console.print(f"error: {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from err


@gpu_app.command("list")
def list_gpus() -> None:
    """Show the GPUs CUDA_VISIBLE_DEVICES leaves visible, with limits, power and temperature."""
    from pals_core.device.nvml import build_nvml_group

    with _gpu_errors(), build_nvml_group(observe_only=True, install_handlers=False) as group:
        table = Table(
            "index", "name", "uuid", "limit W", "range W (default)", "power W", "temp °C", "energy"
        )
        for gpu in group:
            c = gpu.power_limit_constraints()
            table.add_row(
                str(gpu.index),
                gpu.name,
                gpu.uuid,
                f"{gpu.get_power_limit_w():.1f}",
                f"{c.min_w:.0f}-{c.max_w:.0f} ({c.default_w:.0f})",
                f"{gpu.get_power_w():.1f}",
                f"{gpu.get_temperature_c():.0f}",
                getattr(gpu, "energy_source", "?"),
            )
        console.print(table)


@gpu_app.command("set-limit")
def set_limit(
    gpu: Annotated[int, typer.Option("--gpu", help="NVML index of the GPU (as `list` shows).")],
    watts: Annotated[float, typer.Option("--watts", help="New power limit in watts.")],
) -> None:
    """Set one GPU's power limit and leave it set. The original is saved first, so
    `pals gpu restore` puts it back."""
    from pals_core.device.nvml import build_nvml_group

    with _gpu_errors(), build_nvml_group(install_handlers=False) as group:
        matches = [g for g in group if g.index == gpu]
        if not matches:
            indices = ", ".join(str(g.index) for g in group)
            raise typer.BadParameter(
                f"no visible GPU {gpu}; visible: {indices}", param_hint="--gpu"
            )
        target = matches[0]
        target.power_limit_constraints().check(target.index, watts)
        group.access.check(target.index)
        before_w = target.get_power_limit_w()
        if group.state is not None:
            group.state.remember(target, before_w)
        # Written past the group on purpose: the group would undo it on close.
        target.set_power_limit_w(watts)
        console.print(
            f"GPU {target.index} ({target.name}): power limit {before_w:.1f} W -> "
            f"{target.get_power_limit_w():.1f} W"
        )


@gpu_app.command("restore")
def restore(
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Set every GPU to NVML's default limit instead.")
    ] = False,
) -> None:
    """Put back the limits saved before pals_core changed them (after a crash or `set-limit`)."""
    from pals_core.device.nvml import restore_saved_limits

    with _gpu_errors():
        done = restore_saved_limits(defaults=defaults)
    if not done:
        console.print("nothing to restore: no saved limits")
    for r in done:
        console.print(f"GPU {r.index} ({r.name}, {r.uuid}): {r.limit_w:.1f} W ({r.source})")
