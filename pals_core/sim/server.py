"""``pals sim-node``: a simulated vLLM node served over HTTP, paced to real time.

It answers what a vLLM OpenAI-compatible server answers (``/v1/completions``,
``/v1/chat/completions`` with SSE streaming, ``/v1/models``, ``/health``, ``/metrics`` with vLLM's
metric names), plus the PALS admin endpoints that the node agent drives:

- ``GET|POST /pals/batch_limit`` ``{"max_num_seqs": N}`` (see :mod:`pals_core.engine.vllm`);
- ``GET|POST /pals/power_limit`` ``{"gpu": i | null, "watts": W}`` (simulated power caps);
- ``GET /pals/gpus``: each simulated GPU's identity, range and readings.

Timing is the simulator's: a background task keeps the node's :class:`SimClock` one step
(``step_s``, 10 ms) ahead of wall time, and a streamed token is sent at the wall time the
simulator emitted it. Tokens are placeholders; lengths are what counts: the prompt length is
estimated at ~4 characters per token, and the output length is ``max_tokens`` (every request runs
to it, so ``finish_reason`` is ``"length"``).

Deviations from vLLM, on purpose: ``n`` > 1, ``best_of``, beam search and batched prompts are
refused (400); a chat request without ``max_tokens`` generates ``DEFAULT_CHAT_MAX_TOKENS`` (vLLM
would use the whole remaining context); a client that disconnects does not abort its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pals_core.engine.base import DEFAULT_MAX_NUM_SEQS
from pals_core.errors import ConfigurationError
from pals_core.sim import server_admin, server_openai
from pals_core.sim.dvfs import DEFAULT_PHYSICS, check_physics
from pals_core.sim.server_openai import BadRequest, error_response
from pals_core.sim.server_pacing import Pacer

LOAD_PATTERNS = ("none", "poisson", "bursty", "diurnal")
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


@dataclass(frozen=True, slots=True)
class SimNodeConfig:
    """What ``pals sim-node`` simulates. Every field has a default, so a bare command works."""

    model: str = "llama-3.1-8b"
    gpu: str = "H100-SXM"
    num_gpus: int = 1
    load: str = "none"
    rate_req_s: float = 2.0
    seed: int = 1
    batch_limit: int = DEFAULT_MAX_NUM_SEQS
    served_model_name: str | None = None
    max_model_len: int = 32768
    step_s: float = 0.01
    max_catchup_s: float = 0.25
    physics: str = DEFAULT_PHYSICS

    def __post_init__(self) -> None:
        if self.load not in LOAD_PATTERNS:
            raise ConfigurationError(
                f"load must be one of {', '.join(LOAD_PATTERNS)}, got {self.load!r}"
            )
        if self.load != "none" and not self.rate_req_s > 0:
            raise ConfigurationError(f"rate_req_s must be > 0, got {self.rate_req_s}")
        if self.num_gpus < 1:
            raise ConfigurationError(f"num_gpus must be >= 1, got {self.num_gpus}")
        if self.batch_limit < 1:
            raise ConfigurationError(f"batch_limit must be >= 1, got {self.batch_limit}")
        check_physics(self.physics)
        if not 0.001 <= self.step_s <= 0.1:
            raise ConfigurationError(f"step_s must be within [0.001, 0.1] s, got {self.step_s}")

    @property
    def model_name(self) -> str:
        return self.served_model_name or self.model


def build_node(config: SimNodeConfig) -> Any:
    """The simulated node with the configured background load."""
    from pals_core import sim

    workload: Any
    if config.load == "none":
        workload = None
    elif config.load == "poisson":
        workload = sim.PoissonWorkload(rate_req_s=config.rate_req_s)
    elif config.load == "bursty":
        workload = sim.BurstyWorkload(rate_req_s=config.rate_req_s)
    else:
        workload = sim.DiurnalWorkload(rate_req_s=config.rate_req_s)
    return sim.build_sim_node(
        model=config.model,
        gpu=config.gpu,
        num_gpus=config.num_gpus,
        workload=workload,
        seed=config.seed,
        batch_limit=config.batch_limit,
        physics=config.physics,
    )


def create_app(
    config: SimNodeConfig | None = None,
    *,
    node_factory: Callable[[SimNodeConfig], Any] = build_node,
) -> FastAPI:
    """The sim-node app. The node is built and paced in the lifespan, never at import."""
    config = config or SimNodeConfig()
    state: dict[str, Any] = {"config": config}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = node_factory(config)
        pacer = Pacer(node, config.step_s, config.max_catchup_s)
        state.update(node=node, pacer=pacer, created=int(time.time()))
        task = asyncio.create_task(pacer.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="pals sim-node", version="0.1.0", lifespan=lifespan)
    app.state.sim = state
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(BadRequest, _bad_request)  # type: ignore[arg-type]
    app.include_router(server_openai.router)
    app.include_router(server_admin.router)
    return app


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    # drop "body" and pydantic's union-member tags ("str", "list[int]") from the location
    loc = [
        str(p)
        for p in first.get("loc", ())
        if p != "body" and str(p) not in _TYPE_TAGS and "[" not in str(p)
    ]
    param = ".".join(loc) or None
    return error_response(f"{param or 'body'}: {first.get('msg')}", 400, param)


async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
    return error_response(str(exc), exc.status, exc.param)
