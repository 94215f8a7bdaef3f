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
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import BaseModel, ConfigDict, Field

from pals_core.engine.base import DEFAULT_MAX_NUM_SEQS
from pals_core.engine.prometheus import render_metrics
from pals_core.errors import ConfigurationError, PalsError

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
CHAT_TOKENS_PER_MESSAGE = 4  # role markers of the chat template
DEFAULT_COMPLETION_MAX_TOKENS = 16  # vLLM's default for /v1/completions
DEFAULT_CHAT_MAX_TOKENS = 256
LOAD_PATTERNS = ("none", "poisson", "bursty", "diurnal")
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})
PLACEHOLDER_WORDS = (" the", " power", " budget", " holds", " while", " tokens", " flow", ".")


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
    )


class Pacer:
    """Keeps the node's simulated clock one step ahead of wall time, so every token's emission
    time is known shortly before it is due and a stream can send it on time.

    Everything touching the node runs on the event loop, so the simulator needs no locks. If the
    host falls behind by more than ``max_catchup_s`` (an overloaded machine), the simulation
    slows down rather than jumping, and ``lag_s`` counts the simulated time given up."""

    def __init__(self, node: Any, step_s: float, max_catchup_s: float) -> None:
        self.node = node
        self.step_s = step_s
        self.max_catchup_s = max_catchup_s
        self.lag_s = 0.0
        self._offset_s = node.clock.now_s() - time.monotonic()  # simulated minus wall time
        self._stepped = asyncio.Event()

    def wall_s(self, sim_s: float) -> float:
        """The ``time.monotonic()`` at which simulated time ``sim_s`` is due."""
        return sim_s - self._offset_s

    def step(self) -> None:
        clock = self.node.clock
        self._offset_s = max(self._offset_s, clock.now_s() - time.monotonic() - self.step_s)
        target_s = time.monotonic() + self._offset_s + self.step_s
        behind_s = target_s - clock.now_s()
        if behind_s > self.max_catchup_s:
            shift_s = behind_s - self.max_catchup_s
            self._offset_s -= shift_s
            self.lag_s += shift_s
            target_s -= shift_s
        clock.advance_to(target_s)
        stepped, self._stepped = self._stepped, asyncio.Event()
        stepped.set()

    async def run(self) -> None:
        self._offset_s = self.node.clock.now_s() - time.monotonic()
        while True:
            self.step()
            await asyncio.sleep(self.step_s)

    async def next_step(self) -> None:
        await self._stepped.wait()


# -- request bodies (OpenAI / vLLM field names; unknown fields are accepted and ignored) ---------


class StreamOptions(BaseModel):
    include_usage: bool = False


class _Common(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1)


class CompletionRequest(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


class BatchLimitBody(BaseModel):
    max_num_seqs: int = Field(ge=1)


class PowerLimitBody(BaseModel):
    watts: float
    gpu: int | None = Field(default=None, ge=0, description="GPU position; null sets every GPU.")


class BadRequest(PalsError):
    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status


def _error(message: str, status: int, param: str | None = None) -> JSONResponse:
    """vLLM's OpenAI-style error body."""
    kind = {400: "BadRequestError", 404: "NotFoundError"}.get(status, "InternalServerError")
    return JSONResponse(
        {"object": "error", "message": message, "type": kind, "param": param, "code": status},
        status_code=status,
    )


# -- token estimates -----------------------------------------------------------------------------


def _text_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def completion_prompt_tokens(prompt: str | list[str] | list[int] | list[list[int]]) -> int:
    if isinstance(prompt, str):
        return _text_tokens(prompt)
    if len(prompt) == 0:
        raise BadRequest("prompt: must not be empty", "prompt")
    if all(isinstance(p, int) for p in prompt):
        return len(prompt)  # already token ids
    if len(prompt) != 1:
        raise BadRequest("prompt: batches of prompts are not supported; send one", "prompt")
    only = prompt[0]
    if isinstance(only, str):
        return _text_tokens(only)
    if isinstance(only, list):
        return max(1, len(only))
    raise BadRequest("prompt: expected text, token ids or a list of one of them", "prompt")


def chat_prompt_tokens(messages: list[ChatMessage]) -> int:
    total = 0.0
    for m in messages:
        if isinstance(m.content, str):
            text = m.content
        elif m.content is None:
            text = ""
        else:
            text = "".join(str(part.get("text", "")) for part in m.content)
        total += CHAT_TOKENS_PER_MESSAGE + len(text) / CHARS_PER_TOKEN
    return max(1, math.ceil(total))


def _placeholder(i: int) -> str:
    return PLACEHOLDER_WORDS[i % len(PLACEHOLDER_WORDS)]


# -- the app -------------------------------------------------------------------------------------


def create_app(
    config: SimNodeConfig | None = None,
    *,
    node_factory: Callable[[SimNodeConfig], Any] = build_node,
) -> FastAPI:
    """The sim-node app. The node is built and paced in the lifespan, never at import."""
    config = config or SimNodeConfig()
    state: dict[str, Any] = {}

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

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        # drop "body" and pydantic's union-member tags ("str", "list[int]") from the location
        loc = [
            str(p)
            for p in first.get("loc", ())
            if p != "body" and str(p) not in _TYPE_TAGS and "[" not in str(p)
        ]
        param = ".".join(loc) or None
        return _error(f"{param or 'body'}: {first.get('msg')}", 400, param)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return _error(str(exc), exc.status, exc.param)

    def check_request(body: _Common, prompt_tokens: int, max_tokens: int) -> None:
        if body.model is not None and body.model != config.model_name:
            raise BadRequest(f"The model `{body.model}` does not exist.", "model", 404)
        if body.n != 1:
            raise BadRequest("n: only n=1 is supported by the simulator", "n")
        if prompt_tokens + max_tokens > config.max_model_len:
            raise BadRequest(
                f"max_tokens: this model's maximum context length is {config.max_model_len} "
                "tokens. "
                f"However, you requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in "
                f"the messages, {max_tokens} in the completion). Please reduce the length of "
                "the messages or completion.",
                "max_tokens",
            )

    def submit(prompt_tokens: int, max_tokens: int) -> Any:
        try:
            return state["node"].engine.submit(
                prompt_tokens=prompt_tokens, output_tokens=max_tokens
            )
        except ConfigurationError as err:  # e.g. a prompt larger than the whole KV cache
            raise BadRequest(f"prompt: {err}", "prompt") from err

    async def run_request(request: Any, max_tokens: int) -> AsyncIterator[tuple[int, bool]]:
        """Yield (token index, is it the last), each at the wall time the simulator emitted it
        (the clock runs one pacing step ahead, so these times are known just before)."""
        pacer: Pacer = state["pacer"]
        sent = 0
        while sent < max_tokens:
            await pacer.next_step()
            finished = bool(request.finished)
            new_times_s = request.token_times_s(sent)[: max_tokens - sent]
            total = sent + len(new_times_s)
            for t_s in new_times_s:
                delay_s = pacer.wall_s(t_s) - time.monotonic()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
                yield sent, sent == total - 1 and (finished or total == max_tokens)
                sent += 1
            if finished:
                return

    def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
        return {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
        }

    def sse(payload: dict[str, Any]) -> str:
        return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest) -> Response:
        prompt_tokens = completion_prompt_tokens(body.prompt)
        max_tokens = body.max_tokens or DEFAULT_COMPLETION_MAX_TOKENS
        check_request(body, prompt_tokens, max_tokens)
        request = submit(prompt_tokens, max_tokens)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {
            "id": rid,
            "object": "text_completion",
            "created": created,
            "model": config.model_name,
        }

        if body.stream:

            async def stream() -> AsyncIterator[str]:
                async for i, last in run_request(request, max_tokens):
                    choice = {
                        "index": 0,
                        "text": _placeholder(i),
                        "logprobs": None,
                        "finish_reason": "length" if last else None,
                        "stop_reason": None,
                    }
                    yield sse({**head, "choices": [choice]})
                if body.stream_options and body.stream_options.include_usage:
                    yield sse({**head, "choices": [], "usage": usage(prompt_tokens, max_tokens)})
                yield "data: [DONE]\n\n"

            return StreamingResponse(stream(), media_type="text/event-stream")

        text = "".join([_placeholder(i) async for i, _ in run_request(request, max_tokens)])
        choice = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": "length",
            "stop_reason": None,
        }
        return JSONResponse(
            {**head, "choices": [choice], "usage": usage(prompt_tokens, max_tokens)}
        )

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest) -> Response:
        prompt_tokens = chat_prompt_tokens(body.messages)
        max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_CHAT_MAX_TOKENS
        check_request(body, prompt_tokens, max_tokens)
        request = submit(prompt_tokens, max_tokens)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        base = {"id": rid, "created": created, "model": config.model_name}

        if body.stream:
            head = {**base, "object": "chat.completion.chunk"}

            async def stream() -> AsyncIterator[str]:
                first = {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
                yield sse({**head, "choices": [first]})
                async for i, last in run_request(request, max_tokens):
                    choice = {
                        "index": 0,
                        "delta": {"content": _placeholder(i)},
                        "logprobs": None,
                        "finish_reason": "length" if last else None,
                    }
                    yield sse({**head, "choices": [choice]})
                if body.stream_options and body.stream_options.include_usage:
                    yield sse({**head, "choices": [], "usage": usage(prompt_tokens, max_tokens)})
                yield "data: [DONE]\n\n"

            return StreamingResponse(stream(), media_type="text/event-stream")

        text = "".join([_placeholder(i) async for i, _ in run_request(request, max_tokens)])
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": "length",
        }
        return JSONResponse(
            {
                **base,
                "object": "chat.completion",
                "choices": [choice],
                "usage": usage(prompt_tokens, max_tokens),
            }
        )

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {
            "id": config.model_name,
            "object": "model",
            "created": state.get("created", 0),
            "owned_by": "vllm",
            "root": config.model,
            "parent": None,
            "max_model_len": config.max_model_len,
        }
        return {"object": "list", "data": [card]}

    def gpu_families() -> list[Metric]:
        gpus = state["node"].gpus
        power = GaugeMetricFamily(
            "pals_sim:gpu_power_watts", "Simulated GPU board power (W).", labels=["gpu"]
        )
        limit = GaugeMetricFamily(
            "pals_sim:gpu_power_limit_watts", "Simulated GPU power limit (W).", labels=["gpu"]
        )
        energy = CounterMetricFamily(
            "pals_sim:gpu_energy_joules", "Simulated GPU energy (J).", labels=["gpu"]
        )
        for position, gpu in enumerate(gpus):
            power.add_metric([str(position)], gpu.get_power_w())
            limit.add_metric([str(position)], gpu.get_power_limit_w())
            energy.add_metric([str(position)], gpu.get_energy_j())
        lag = GaugeMetricFamily(
            "pals_sim:pacing_lag_seconds",
            "Simulated time lost because the host could not keep up with wall time.",
            value=state["pacer"].lag_s,
        )
        return [power, limit, energy, lag]

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        engine = state["node"].engine
        text = render_metrics(
            engine.metrics(), config.model_name, engine.get_batch_limit(), extra=gpu_families()
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/pals/batch_limit")
    async def get_batch_limit() -> dict[str, int]:
        return {"max_num_seqs": int(state["node"].engine.get_batch_limit())}

    @app.post("/pals/batch_limit")
    async def set_batch_limit(body: BatchLimitBody) -> dict[str, int]:
        engine = state["node"].engine
        try:
            engine.set_batch_limit(body.max_num_seqs)
        except ConfigurationError as err:
            raise BadRequest(f"max_num_seqs: {err}", "max_num_seqs") from err
        return {"max_num_seqs": int(engine.get_batch_limit())}

    def power_state() -> dict[str, Any]:
        gpus = state["node"].gpus
        c = gpus[0].power_limit_constraints()
        return {
            "power_limits_w": gpus.get_power_limits_w(),
            "min_w": c.min_w,
            "max_w": c.max_w,
            "default_w": c.default_w,
        }

    def gpu_reading(position: int, gpu: Any) -> dict[str, Any]:
        c = gpu.power_limit_constraints()
        return {
            "position": position,
            "index": gpu.index,
            "uuid": gpu.uuid,
            "name": gpu.name,
            "min_w": c.min_w,
            "max_w": c.max_w,
            "default_w": c.default_w,
            "power_limit_w": gpu.get_power_limit_w(),
            "power_w": gpu.get_power_w(),
            "energy_j": gpu.get_energy_j(),
            "sm_clock_mhz": gpu.get_sm_clock_mhz(),
            "temperature_c": gpu.get_temperature_c(),
            "memory_used_bytes": gpu.get_memory_used_bytes(),
        }

    @app.get("/pals/gpus")
    async def list_gpus() -> list[dict[str, Any]]:
        """Every simulated GPU's identity, range and current readings (the remote GPU backend,
        :mod:`pals_core.device.simnode`, reads these)."""
        return [gpu_reading(i, gpu) for i, gpu in enumerate(state["node"].gpus)]

    @app.get("/pals/power_limit")
    async def get_power_limit() -> dict[str, Any]:
        return power_state()

    @app.post("/pals/power_limit")
    async def set_power_limit(body: PowerLimitBody) -> dict[str, Any]:
        gpus = state["node"].gpus
        if body.gpu is not None and body.gpu >= len(gpus):
            raise BadRequest(f"gpu: must be within [0, {len(gpus) - 1}], got {body.gpu}", "gpu")
        positions = range(len(gpus)) if body.gpu is None else [body.gpu]
        for position in positions:  # check all first: nothing is half-written
            gpu = gpus[position]
            c = gpu.power_limit_constraints()
            if not c.min_w <= body.watts <= c.max_w:
                raise BadRequest(
                    f"watts: {body.watts} W is outside GPU {position}'s allowed range "
                    f"[{c.min_w:.1f}, {c.max_w:.1f}] W",
                    "watts",
                )
        for position in positions:
            gpus[position].set_power_limit_w(body.watts)
        return power_state()

    return app
