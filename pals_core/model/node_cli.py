"""``pals profile node``: measure the profile of a real node (vLLM and its GPUs).

Registered on ``pals profile`` by :mod:`pals_core.model.cli`; the sweep itself is
:func:`pals_core.model.node_profile.profile_node`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from pals_core.errors import PalsError

if TYPE_CHECKING:
    from pals_core.device.gpu import GPUGroup
    from pals_core.engine.vllm import VLLMEngine

console = Console()


def profile_node_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the JSON.")],
    model: Annotated[
        str, typer.Option(help="The model vLLM serves (its --served-model-name), also recorded.")
    ],
    engine_url: Annotated[
        str | None, typer.Option(help="vLLM's API server [PALS_ENGINE_URL].")
    ] = None,
    vllm_control: Annotated[
        str | None,
        typer.Option(
            help="The PALS plugin's control channel [PALS_VLLM_CONTROL]; unset: the "
            "batch limit goes through --engine-url (pals proxy)."
        ),
    ] = None,
    gpus: Annotated[
        str, typer.Option(help="GPU backend: nvml, or sim-node (a `pals sim-node`'s GPUs).")
    ] = "nvml",
    sim_node_url: Annotated[
        str | None, typer.Option(help="The `pals sim-node` whose GPUs stand in (--gpus sim-node).")
    ] = None,
    tensor_parallel: Annotated[
        int | None, typer.Option(help="vLLM's tensor parallel size (default: the GPU count).")
    ] = None,
    caps: Annotated[
        str | None, typer.Option(help="Per-GPU caps in W, comma-separated (default: 5 geometric).")
    ] = None,
    batches: Annotated[str, typer.Option(help="Batch limits, comma-separated.")] = "8,16,32,64,128",
    warmup_s: Annotated[float, typer.Option(help="Settling time before each window.")] = 10.0,
    window_s: Annotated[float, typer.Option(help="Measurement window per point.")] = 20.0,
    sample_s: Annotated[float, typer.Option(help="Running-batch sampling period.")] = 0.5,
    load_concurrency: Annotated[
        int | None,
        typer.Option(
            help="Requests the built-in load keeps outstanding (default: twice the "
            "largest batch; 0: none, bring your own saturating load)."
        ),
    ] = None,
    load_max_tokens: Annotated[int, typer.Option(help="Tokens per load request.")] = 256,
) -> None:
    """Sweep caps x batch limits on this node's vLLM under a saturating load and save the
    profile: caps through NVML (or a sim-node), the batch limit through the PALS plugin's
    control channel (or pals proxy), metrics from vLLM's /metrics."""
    from pals_core.model.cli import default_caps_w, parse_list
    from pals_core.model.node_profile import SaturatingClient, profile_node
    from pals_core.model.profile import ProfileMetadata
    from pals_core.settings import get_settings

    settings = get_settings()
    try:
        group = _gpu_group(gpus, sim_node_url, settings.observe_only)
        engine = _engine(engine_url or settings.engine_url, vllm_control or settings.vllm_control)
        try:
            limits = group[0].power_limit_constraints()
            caps_w = (
                [float(c) for c in parse_list(caps, "--caps", float)]
                if caps
                else default_caps_w(limits.min_w, limits.max_w)
            )
            batch_list = [int(b) for b in parse_list(batches, "--batches", int)]
            concurrency = 2 * max(batch_list) if load_concurrency is None else load_concurrency
            load = (
                SaturatingClient(engine.base_url, model, concurrency, load_max_tokens)
                if concurrency > 0
                else None
            )
            metadata = ProfileMetadata(
                gpu_name=group[0].name,
                num_gpus=len(group),
                model=model,
                tensor_parallel=tensor_parallel or len(group),
                engine="vllm",
                notes=f"real node ({gpus} GPUs), "
                + (
                    f"built-in load: {concurrency} outstanding x {load_max_tokens} tokens"
                    if load
                    else "external load"
                ),
            )
            console.print(
                f"profiling {len(caps_w)} caps x {len(batch_list)} batches, "
                f"{warmup_s + window_s:.0f} s per point, on {engine.base_url}"
            )
            profile = profile_node(
                group,
                engine,
                caps_w=caps_w,
                batches=batch_list,
                metadata=metadata,
                load=load,
                warmup_s=warmup_s,
                window_s=window_s,
                sample_s=sample_s,
                progress=lambda done, total, p: console.print(
                    f"  {done}/{total}: cap {p.cap_w:.0f} W batch {p.batch}: "
                    f"{p.throughput_tok_s:.0f} tok/s at {p.power_w:.0f} W"
                ),
            )
        finally:
            engine.close()
            group.close()
    except PalsError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    profile.save(output)
    console.print(f"saved {len(profile.points)} points to {output}")


def _gpu_group(backend: str, sim_node_url: str | None, observe_only: bool) -> GPUGroup:
    from pals_core.errors import ConfigurationError

    if backend == "nvml":
        if observe_only:
            raise ConfigurationError("PALS_OBSERVE_ONLY is set: a profile must set power caps")
        from pals_core.device.nvml import build_nvml_group

        return build_nvml_group(observe_only=False, install_handlers=True)
    if backend == "sim-node":
        if not sim_node_url:
            raise ConfigurationError("--gpus sim-node needs --sim-node-url (a `pals sim-node`)")
        from pals_core.device.simnode import build_sim_node_gpu_group

        return build_sim_node_gpu_group(sim_node_url)
    raise ConfigurationError(f"--gpus must be nvml or sim-node, got {backend!r}")


def _engine(engine_url: str, control: str | None) -> VLLMEngine:
    from pals_core.engine.vllm import VLLMEngine

    return VLLMEngine(engine_url, control=control, timeout_s=10.0)
