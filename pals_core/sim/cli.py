"""``pals sim``: calibrate, fit, run and list the simulator's models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pals_core.engine.base import DEFAULT_MAX_NUM_SEQS

app = typer.Typer(
    name="sim",
    help="The calibrated GPU + vLLM simulator.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.command()
def models() -> None:
    """List the simulated models (with their calibrated GPU counts) and GPU types."""
    from pals_core.sim import GPU_NAMES, MODEL_NAMES, gpu_spec, model_profile

    table = Table("model", "kind", "params (active)", "deployments", "ITL p99 SLO (s)")
    for name in MODEL_NAMES:
        p = model_profile(name)
        kind = f"MoE {p.num_experts}e top-{p.experts_per_token}" if p.is_moe else "dense"
        deployments = ", ".join(f"{g} x{n}" for g, n in p.supported())
        params = f"{p.total_params / 1e9:.0f}B ({p.active_params / 1e9:.1f}B)"
        table.add_row(name, kind, params, deployments, f"{p.default_itl_p99_slo_s:g}")
    console.print(table)
    gpus = Table("gpu", "product", "cap range (W)", "idle (W)", "HBM (TB/s)", "BF16 (TFLOPs)")
    for name in GPU_NAMES:
        s = gpu_spec(name)
        gpus.add_row(
            name,
            s.product_name,
            f"{s.min_cap_w:g}-{s.max_cap_w:g} (default {s.default_cap_w:g})",
            f"{s.idle_w:g}",
            f"{s.hbm_bandwidth_bytes_s / 1e12:.2f}",
            f"{s.peak_bf16_flops / 1e12:.0f}",
        )
    console.print(gpus)


@app.command()
def calibrate(
    json_path: Path | None = typer.Option(None, "--json", help="Write the comparison as JSON."),
    data: Path | None = typer.Option(
        None, "--data", help="Calibration folder (default: ../shared/calibration or env)."
    ),
    all_points: bool = typer.Option(
        True, "--all/--acceptance-only", help="Also report the larger MoE sweeps."
    ),
    physics: str = typer.Option("nominal", help="Physics variant: nominal or pessimistic."),
    seeds: int = typer.Option(5, min=1, help="Seeds per point (1..seeds)."),
) -> None:
    """Compare the simulator with every calibration point: the seed-mean error (bar 10 %) and
    the worst seed's error (bar 15 %) per point."""
    from pals_core.errors import ConfigurationError
    from pals_core.sim.calibration import ACCEPTANCE_DATASETS, run_calibration, summarize

    datasets = None if all_points else list(ACCEPTANCE_DATASETS)
    try:
        comparisons = run_calibration(
            data,
            datasets,
            progress=lambda name: console.log(f"simulating {name}"),
            seeds=tuple(range(1, seeds + 1)),
            physics=physics,
        )
    except ConfigurationError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    table = Table("dataset", "x", "metric", "source", "seed mean", "rel. error", "worst seed")
    for c in comparisons:
        style = "green" if c.accepted else "red"
        table.add_row(
            c.dataset,
            f"{c.x_name}={c.x:g}",
            c.metric,
            f"{c.source:.4g}",
            f"{c.simulated:.4g}",
            f"[{style}]{c.rel_error:+.1%}[/{style}]",
            f"[{style}]{c.worst_seed_rel_error:+.1%}[/{style}]",
        )
    console.print(table)
    summary = summarize(comparisons)
    worst_by = summary["max_abs_worst_seed_rel_error_by_dataset"]
    mean_by = summary["max_abs_rel_error_by_dataset"]
    if not (isinstance(mean_by, dict) and isinstance(worst_by, dict)):
        raise TypeError("summarize() returned per-dataset figures that are not mappings")
    for name, mean_err in mean_by.items():
        tag = "acceptance" if name in ACCEPTANCE_DATASETS else "reported"
        console.print(
            f"{name:40s} max |seed-mean error| {mean_err:.1%}, "
            f"worst seed {worst_by[name]:.1%} ({tag})"
        )
    console.print(
        f"[bold]{physics}: max |seed-mean error| {summary['max_abs_rel_error']}, "
        f"worst seed {summary['max_abs_worst_seed_rel_error']}, accepted {summary['accepted']}"
    )
    if json_path is not None:
        json_path.write_text(json.dumps({"physics": physics, **summary}, indent=2))
        console.print(f"wrote {json_path}")


@app.command()
def fit(
    data: Path | None = typer.Option(None, "--data", help="Calibration folder."),
    only: list[str] = typer.Option(
        [], "--only", help="Fit only these datasets (model/GPUxN, or dvfs)."
    ),
    max_nfev: int = typer.Option(60, help="Simulator evaluations per least-squares fit."),
    prompt_mean_tok: float | None = typer.Option(
        None, help="lm-arena-chat mean prompt length to assume (default: current constant)."
    ),
    write: bool = typer.Option(True, "--write/--dry-run", help="Rewrite fitted_constants.py."),
    save_partial_path: Path | None = typer.Option(
        None, "--save-partial", help="Save only the --only fits as JSON (for parallel fits)."
    ),
    merge: list[Path] = typer.Option(
        [], "--merge", help="Merge partial fits into fitted_constants.py instead of fitting."
    ),
) -> None:
    """Refit the simulator constants on the calibration data (slow: minutes)."""
    from pals_core.sim.fit import (
        merge_partials,
        render_constants,
        run_fit,
        save_partial,
        write_constants,
    )

    if merge:
        text = merge_partials(merge)
        console.print(f"wrote {write_constants(text)}")
        return
    fitted = run_fit(
        data, only or None, log=console.print, max_nfev=max_nfev, prompt_mean_tok=prompt_mean_tok
    )
    if save_partial_path is not None:
        save_partial(save_partial_path, fitted, list(only) if only else ["dvfs"])
        console.print(f"saved {save_partial_path}")
        return
    text = render_constants(fitted)
    if write:
        console.print(f"wrote {write_constants(text)}")
    else:
        console.print(text)


@app.command()
def run(
    model: str = typer.Option("llama-3.1-8b", help="Model name (see `pals sim models`)."),
    gpu: str = typer.Option("H100-SXM", help="GPU type."),
    gpus: int = typer.Option(1, "--gpus", help="GPUs (TP degree, or EP for MoE)."),
    rate: float = typer.Option(4.0, help="Poisson arrival rate (requests/s)."),
    duration_s: float = typer.Option(300.0, "--duration-s", help="Simulated seconds."),
    batch_limit: int = typer.Option(DEFAULT_MAX_NUM_SEQS, help="max_num_seqs."),
    cap_w: float | None = typer.Option(None, help="Power cap for every GPU (W)."),
    seed: int = typer.Option(0),
    physics: str = typer.Option("nominal", help="Physics variant: nominal or pessimistic."),
) -> None:
    """Run a node under Poisson load and print throughput, power, tok/J and ITL."""
    from pals_core.errors import ConfigurationError
    from pals_core.sim import PoissonWorkload, build_sim_node

    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise typer.BadParameter("must be a positive number of seconds", param_hint="--duration-s")
    try:
        node = build_sim_node(
            model,
            gpu,
            gpus,
            workload=PoissonWorkload(rate),
            seed=seed,
            batch_limit=batch_limit,
            physics=physics,
        )
        if cap_w is not None:
            node.gpus.set_power_limits_w([cap_w] * len(node.gpus))
    except ConfigurationError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    m0 = node.engine.metrics()
    node.clock.sleep(duration_s)
    m = node.engine.metrics()
    energy_j = node.exact_energy_j()
    tokens = m.generation_tokens_total - m0.generation_tokens_total
    itl = m.inter_token_latency_seconds
    table = Table("figure", "value")
    table.add_row("deployment", f"{model} on {gpus} x {gpu}, batch limit {batch_limit}")
    table.add_row("offered load", f"{rate:g} req/s for {duration_s:g} s")
    table.add_row(
        "requests finished / arrived", f"{m.request_success_total} / {m.requests_arrived_total}"
    )
    table.add_row("throughput", f"{tokens / duration_s:.1f} tok/s")
    table.add_row("power (all GPUs)", f"{energy_j / duration_s:.1f} W")
    table.add_row("energy efficiency", f"{tokens / energy_j:.3f} tok/J" if energy_j else "-")
    table.add_row(
        "ITL p50 / p99", f"{itl.quantile(0.5) * 1e3:.1f} / {itl.quantile(0.99) * 1e3:.1f} ms"
    )
    ttft = m.time_to_first_token_seconds
    table.add_row("TTFT p50", f"{ttft.quantile(0.5) * 1e3:.1f} ms")
    console.print(table)
