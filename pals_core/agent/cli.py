"""``pals agent`` (one real node) and ``pals fleet`` (many simulated nodes in one process).

Exit codes: 0 stopped (Ctrl-C / SIGTERM), 2 bad configuration, 3 the gateway refused the token.
"""

from __future__ import annotations

import logging
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from pals_core.errors import PalsError

if TYPE_CHECKING:
    from pals_core.agent.node import NodeControl
    from pals_core.agent.runner import ControlThread
    from pals_core.settings import PalsSettings

err_console = Console(stderr=True)
EXIT_CONFIG = 2

GatewayOption = Annotated[
    str | None, typer.Option("--gateway", help="Gateway base URL [PALS_GATEWAY_URL].")
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option("--token-file", help="File with the gateway token [PALS_GATEWAY_TOKEN_FILE]."),
]
MetricsPortOption = Annotated[
    int | None, typer.Option("--metrics-port", help="Port of /metrics [PALS_METRICS_PORT].")
]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"error: {message}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_CONFIG)


def _settings(
    gateway: str | None, token_file: Path | None, *, token_required: bool = True
) -> tuple[PalsSettings, str, str]:
    from pals_core.settings import get_settings

    settings = get_settings()
    if token_file is not None:
        settings = settings.model_copy(update={"gateway_token_file": token_file})
    url = gateway or settings.gateway_url
    if not url or not url.startswith(("http://", "https://")):
        raise _fail(f"--gateway / PALS_GATEWAY_URL must be an http(s) URL, got {url!r}")
    try:
        token = settings.resolved_gateway_token()
    except OSError as err:
        raise _fail(f"cannot read the token file: {err}") from err
    if not token and token_required:
        raise _fail("no gateway token: set PALS_GATEWAY_TOKEN or PALS_GATEWAY_TOKEN_FILE")
    return settings, url, token or ""


def _run(
    nodes: list[NodeControl],
    control: ControlThread,
    settings: PalsSettings,
    *,
    url: str,
    tokens: dict[str, str],
    default_token: str,
    metrics_port: int | None,
    spool_path: Path,
) -> int:
    from pals_core.agent.link import LinkConfig
    from pals_core.agent.metrics import serve_metrics
    from pals_core.agent.runner import Agent
    from pals_core.agent.spool import TelemetrySpool

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    spool = TelemetrySpool(spool_path, settings.spool_max_samples)
    link = LinkConfig(
        heartbeat_s=settings.heartbeat_s,
        telemetry_batch_s=settings.telemetry_batch_s,
        start_spread_s=min(20.0, 0.05 * (len(nodes) - 1)),
    )
    agent = Agent(
        nodes,
        gateway_url=url,
        tokens=lambda name: tokens.get(name, default_token),
        spool=spool,
        link_config=link,
        control=control,
    )
    port = serve_metrics(
        lambda: nodes,
        spool,
        settings.metrics_host,
        settings.metrics_port if metrics_port is None else metrics_port,
    )
    err_console.print(
        f"pals: {len(nodes)} node(s) following {url}; metrics on "
        f"http://{settings.metrics_host}:{port}/metrics (Ctrl-C stops)"
    )
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    try:
        code = agent.run()
    finally:
        spool.close()
    if code == 3:
        err_console.print("error: the gateway refused the token (exit 3); check PALS_GATEWAY_TOKEN")
    return code


def agent(
    gateway: GatewayOption = None,
    token_file: TokenFileOption = None,
    name: Annotated[str | None, typer.Option(help="Node name [PALS_NODE_NAME; host name].")] = None,
    gpus: Annotated[
        str, typer.Option(help="GPU backend: nvml, or sim-node (the engine's).")
    ] = "nvml",
    sim_node_url: Annotated[
        str | None,
        typer.Option(
            help="With --gpus sim-node: the sim-node whose GPUs stand in for a real "
            "vLLM's (default: the engine's URL)."
        ),
    ] = None,
    profile: Annotated[
        Path | None, typer.Option(help="PALS profile [PALS_PROFILE_PATH; <data_dir>/profile.json].")
    ] = None,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Follow the gateway's power budget on this node: register, stream the allocation, run the
    PALS controller on the GPUs (NVML, or a `pals sim-node`'s) and the engine at PALS_ENGINE_URL,
    send telemetry."""
    import time

    from pals_core.agent.runner import ControlThread

    settings, url, token = _settings(gateway, token_file)
    node_name = name or settings.node_name or socket.gethostname()
    try:
        node = _real_node(settings, node_name, gpus, profile, sim_node_url=sim_node_url)
    except PalsError as err:
        raise _fail(str(err)) from err
    control = ControlThread([node], node.config.tick_s, time.monotonic)
    try:
        code = _run(
            [node],
            control,
            settings,
            url=url,
            tokens={},
            default_token=token,
            metrics_port=metrics_port,
            spool_path=settings.data_dir / "agent-spool.db",
        )
    finally:
        node.gpus.close()  # puts the caps back (NVML also on signals)
    raise typer.Exit(code)


def _real_node(
    settings: PalsSettings,
    name: str,
    backend: str,
    profile: Path | None,
    *,
    sim_node_url: str | None = None,
) -> NodeControl:
    from pals_core.agent.node import NodeControl, node_spec
    from pals_core.agent.telemetry import TelemetryRecorder
    from pals_core.agent.trajectory import BudgetFollower, FollowerConfig
    from pals_core.control.pals import PalsController
    from pals_core.control.qos import QoSPolicy
    from pals_core.control.runtime import LoopConfig
    from pals_core.device.gpu import GPUGroup
    from pals_core.engine.vllm import VLLMEngine
    from pals_core.errors import ConfigurationError
    from pals_core.model import PerformanceModel, Profile
    from pals_core.model.profile import NodeIdentity

    group: GPUGroup
    if backend == "nvml":
        from pals_core.device.nvml import build_nvml_group

        group = build_nvml_group(observe_only=settings.observe_only, install_handlers=True)
    elif backend == "sim-node":
        from pals_core.device.simnode import build_sim_node_gpu_group

        group = build_sim_node_gpu_group(sim_node_url or settings.engine_url)
    else:
        raise ConfigurationError(f"--gpus must be nvml or sim-node, got {backend!r}")
    path = profile or settings.profile_path or settings.data_dir / "profile.json"
    model = None
    if path.exists():
        loaded = Profile.load(path)
        loaded.check_matches(NodeIdentity(group[0].name, len(group), loaded.metadata.model))
        model = PerformanceModel.fit(loaded)
    else:
        err_console.print(
            f"no PALS profile at {path}: running the safe default (maximum caps, budget kept by "
            "proportional cuts) and registering without a curve (the gateway's linear default)"
        )
    spec = node_spec(name, group, model)
    qos = QoSPolicy(itl_p99_slo_s=settings.itl_p99_slo_s)
    follower = BudgetFollower(
        FollowerConfig(
            min_power_w=spec.min_power_w,
            max_power_w=spec.max_power_w,
            lead_s=settings.budget_lead_s,
            lease_s=settings.lease_s,
            failsafe_w=settings.failsafe_w,
        )
    )
    loop = LoopConfig(period_s=settings.control_period_s, tick_s=settings.control_period_s / 5)
    policy = PalsController(model, num_gpus=len(group), qos=qos)
    return NodeControl(
        spec,
        group,
        VLLMEngine(settings.engine_url, control=settings.vllm_control),
        policy,
        follower,
        TelemetryRecorder(qos),
        loop,
    )


def fleet(
    nodes: Annotated[
        str,
        typer.Option(help="COUNT (default mix) or [COUNTx]MODEL@GPUS,... e.g. 2xllama-3.1-8b@1"),
    ] = "8",
    gateway: GatewayOption = None,
    token_file: TokenFileOption = None,
    tokens: Annotated[
        Path | None,
        typer.Option(help="File of 'NAME TOKEN' lines: per-node tokens (else the one token)."),
    ] = None,
    prefix: Annotated[str, typer.Option(help="Node names: PREFIX-001, PREFIX-002, ...")] = "sim",
    load: Annotated[float, typer.Option(min=0.0, max=1.5, help="Offered load / capacity.")] = 0.6,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 1,
    metrics_port: MetricsPortOption = None,
) -> None:
    """Run many simulated nodes in this process, each a real agent (PALS controller, simulated
    engine and GPUs in real time) registering, following its stream and sending telemetry."""
    from pals_core.agent.fleet import FleetOptions, build_fleet, parse_spec
    from pals_core.agent.runner import ControlThread
    from pals_core.control.runtime import LoopConfig
    from pals_core.errors import ConfigurationError

    settings, url, token = _settings(gateway, token_file, token_required=tokens is None)
    try:
        per_node = _read_tokens(tokens) if tokens is not None else {}
        options = FleetOptions(
            name_prefix=prefix,
            load_frac=load,
            seed=seed,
            profile_dir=settings.data_dir / "fleet-profiles",
            loop=LoopConfig(settings.control_period_s, settings.control_period_s / 5),
            lead_s=settings.budget_lead_s,
            lease_s=settings.lease_s,
            failsafe_w=settings.failsafe_w,
        )
        err_console.print("pals fleet: profiling each node type (cached after the first run) ...")
        types = parse_spec(nodes)
        missing = [f"{prefix}-{i + 1:03d}" for i in range(len(types))]
        missing = [name for name in missing if name not in per_node]
        if tokens is not None and missing and not token:
            raise ConfigurationError(f"--tokens: no token for {', '.join(missing[:5])}")
        built, now_s = build_fleet(types, options)
    except PalsError as err:
        raise _fail(str(err)) from err
    control = ControlThread(built, options.loop.tick_s, now_s, counters_age_s=now_s.counters_age_s)
    code = _run(
        built,
        control,
        settings,
        url=url,
        tokens=per_node,
        default_token=token,
        metrics_port=metrics_port,
        spool_path=settings.data_dir / f"fleet-{prefix}-spool.db",
    )
    raise typer.Exit(code)


def _read_tokens(path: Path) -> dict[str, str]:
    from pals_core.errors import ConfigurationError

    out: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigurationError(f"--tokens: cannot read {path}: {err}") from err
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ConfigurationError(f"--tokens: line {number} must be 'NAME TOKEN'")
        out[parts[0]] = parts[1]
    return out
