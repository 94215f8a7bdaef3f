"""The ``pals proxy`` command."""

from __future__ import annotations

from typing import Annotated

import typer


def proxy(
    upstream: Annotated[
        str, typer.Option(help="vLLM's API server, e.g. http://127.0.0.1:8000.")
    ] = "http://127.0.0.1:8000",
    max_num_seqs: Annotated[
        int, typer.Option(min=1, help="Requests admitted upstream at once (the batch limit).")
    ] = 256,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8001,
    upstream_keepalive_s: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Idle connections to vLLM are dropped after this long; keep it below vLLM's "
            "keep-alive (5 s by default).",
        ),
    ] = 2.0,  # pals_core.proxy.app.UPSTREAM_KEEPALIVE_S (not imported here: nothing at import)
) -> None:
    """Serve an OpenAI-compatible reverse proxy in front of vLLM that admits at most
    --max-num-seqs generation requests at once (the batch knob for a vLLM without the PALS
    scheduler plugin). Streams pass through; a client's disconnect aborts its upstream request;
    /metrics is vLLM's plus the proxy's gauges; GET/POST /pals/batch_limit reads/changes the limit.
    """
    import uvicorn

    from pals_core.errors import ConfigurationError
    from pals_core.proxy.app import ProxyApp

    try:
        app = ProxyApp(upstream, max_num_seqs, upstream_keepalive_s=upstream_keepalive_s)
    except ConfigurationError as err:
        raise typer.BadParameter(str(err), param_hint="--upstream") from err
    typer.echo(
        f"pals proxy: http://{host}:{port} -> {app.upstream_url}, at most {max_num_seqs} "
        "requests at once (/pals/batch_limit changes it)"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
