"""The OpenAI-compatible endpoints of ``pals sim-node``: ``/v1/completions`` and
``/v1/chat/completions``, streamed (SSE) or not, through one path.

Both endpoints do the same steps: estimate the prompt's tokens, check the request, submit it to
the simulated engine, then send each token at the wall time the simulator emitted it. They differ
only in how a chunk, the full response and the opening chunk look (:class:`_Shape`).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from pals_core.errors import ConfigurationError, PalsError
from pals_core.sim.server_pacing import Pacer

CHARS_PER_TOKEN = 4
CHAT_TOKENS_PER_MESSAGE = 4  # role markers of the chat template
DEFAULT_COMPLETION_MAX_TOKENS = 16  # vLLM's default for /v1/completions
DEFAULT_CHAT_MAX_TOKENS = 256
PLACEHOLDER_WORDS = (" the", " power", " budget", " holds", " while", " tokens", " flow", ".")

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


def error_response(message: str, status: int, param: str | None = None) -> JSONResponse:
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


# -- one path for both endpoints -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
    """How one endpoint's responses look."""

    id_prefix: str
    object_full: str
    object_chunk: str
    chunk_choice: Callable[[str, bool], dict[str, Any]]
    full_choice: Callable[[str], dict[str, Any]]
    opening_choice: dict[str, Any] | None = None


def _completion_choice(text: str, last: bool = True) -> dict[str, Any]:
    return {
        "index": 0,
        "text": text,
        "logprobs": None,
        "finish_reason": "length" if last else None,
        "stop_reason": None,
    }


_COMPLETION = _Shape(
    id_prefix="cmpl",
    object_full="text_completion",
    object_chunk="text_completion",
    chunk_choice=_completion_choice,
    full_choice=_completion_choice,
)
_CHAT = _Shape(
    id_prefix="chatcmpl",
    object_full="chat.completion",
    object_chunk="chat.completion.chunk",
    chunk_choice=lambda text, last: {
        "index": 0,
        "delta": {"content": text},
        "logprobs": None,
        "finish_reason": "length" if last else None,
    },
    full_choice=lambda text: {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "logprobs": None,
        "finish_reason": "length",
    },
    opening_choice={
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": None,
    },
)


def _check(
    body: _Common, model_name: str, max_model_len: int, prompt_tokens: int, max_tokens: int
) -> None:
    if body.model is not None and body.model != model_name:
        raise BadRequest(f"The model `{body.model}` does not exist.", "model", 404)
    if body.n != 1:
        raise BadRequest("n: only n=1 is supported by the simulator", "n")
    if prompt_tokens + max_tokens > max_model_len:
        raise BadRequest(
            f"max_tokens: this model's maximum context length is {max_model_len} tokens. "
            f"However, you requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in "
            f"the messages, {max_tokens} in the completion). Please reduce the length of "
            "the messages or completion.",
            "max_tokens",
        )


def _submit(node: Any, prompt_tokens: int, max_tokens: int) -> Any:
    try:
        return node.engine.submit(prompt_tokens=prompt_tokens, output_tokens=max_tokens)
    except ConfigurationError as err:  # e.g. a prompt larger than the whole KV cache
        raise BadRequest(f"prompt: {err}", "prompt") from err


async def _tokens(pacer: Pacer, request: Any, max_tokens: int) -> AsyncIterator[tuple[int, bool]]:
    """Yield (token index, is it the last), each at the wall time the simulator emitted it
    (the clock runs one pacing step ahead, so these times are known just before)."""
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


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def _respond(
    http: Request, shape: _Shape, body: _Common, prompt_tokens: int, max_tokens: int
) -> Response:
    """Check, submit, then stream the tokens (SSE) or send them in one response."""
    sim = http.app.state.sim
    config = sim["config"]
    _check(body, config.model_name, config.max_model_len, prompt_tokens, max_tokens)
    request = _submit(sim["node"], prompt_tokens, max_tokens)
    head = {
        "id": f"{shape.id_prefix}-{uuid.uuid4().hex}",
        "created": int(time.time()),
        "model": config.model_name,
    }
    tokens = _tokens(sim["pacer"], request, max_tokens)
    usage = _usage(prompt_tokens, max_tokens)
    if not body.stream:
        text = "".join([_placeholder(i) async for i, _ in tokens])
        full = {**head, "object": shape.object_full, "choices": [shape.full_choice(text)]}
        return JSONResponse({**full, "usage": usage})
    chunk_head = {**head, "object": shape.object_chunk}
    include_usage = body.stream_options is not None and body.stream_options.include_usage

    async def stream() -> AsyncIterator[str]:
        if shape.opening_choice is not None:
            yield _sse({**chunk_head, "choices": [shape.opening_choice]})
        async for i, last in tokens:
            yield _sse({**chunk_head, "choices": [shape.chunk_choice(_placeholder(i), last)]})
        if include_usage:
            yield _sse({**chunk_head, "choices": [], "usage": usage})
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


router = APIRouter()


@router.post("/v1/completions", response_model=None)
async def completions(body: CompletionRequest, http: Request) -> Response:
    prompt_tokens = completion_prompt_tokens(body.prompt)
    max_tokens = body.max_tokens or DEFAULT_COMPLETION_MAX_TOKENS
    return await _respond(http, _COMPLETION, body, prompt_tokens, max_tokens)


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, http: Request) -> Response:
    prompt_tokens = chat_prompt_tokens(body.messages)
    max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_CHAT_MAX_TOKENS
    return await _respond(http, _CHAT, body, prompt_tokens, max_tokens)
