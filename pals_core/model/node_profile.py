"""Profile a real node: the sweep of :mod:`pals_core.model.sweep` on a vLLM server and its GPUs.

The sweep sets the power caps through the node's :class:`~pals_core.device.gpu.GPUGroup` (NVML on
a GPU node; a ``pals sim-node``'s GPUs where there is none) and the batch limit through
:class:`~pals_core.engine.vllm.VLLMEngine` (the PALS scheduler plugin's control channel, or
``pals proxy``), and reads vLLM's own ``/metrics``. The queue must stay full for the whole sweep:
:class:`SaturatingClient` keeps ``concurrency`` completion requests outstanding at every moment
(closed loop, ``ignore_eos`` so each request makes exactly ``max_tokens`` tokens), or bring your
own load generator (e.g. ``vllm bench serve --request-rate inf --max-concurrency N`` on the
production prompt mix) and pass ``load=None``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from pals_core.clock import Clock, RealClock
from pals_core.device.gpu import GPUGroup
from pals_core.engine.vllm import VLLMEngine
from pals_core.errors import ConfigurationError, EngineError
from pals_core.model.profile import Profile, ProfileMetadata
from pals_core.model.sweep import ProgressCallback, run_profile_sweep

PROMPT = "Explain how a data center can follow a power budget while serving language models."


@dataclass
class SaturatingClient:
    """``concurrency`` closed-loop clients sending ``/v1/completions`` to ``base_url`` for the
    served model ``model`` until :meth:`stop`; errors are counted, not raised (the sweep marks
    a point whose queue ran empty as unsaturated)."""

    base_url: str
    model: str
    concurrency: int
    max_tokens: int = 256
    prompt: str = PROMPT
    completed: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_tokens < 1:
            raise ConfigurationError(
                f"load concurrency and max_tokens must be >= 1, got {self.concurrency} and "
                f"{self.max_tokens}"
            )

    async def _one_client(self, client: httpx.AsyncClient) -> None:
        body = {
            "model": self.model,
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
            "ignore_eos": True,
        }
        while not self._stop.is_set():
            try:
                response = await client.post("/v1/completions", json=body)
                if response.status_code != 200:
                    self.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    await asyncio.sleep(1.0)  # e.g. a wrong model name: do not spin
                    continue
                self.completed += 1
            except httpx.HTTPError as err:
                self.errors.append(repr(err))
                await asyncio.sleep(1.0)

    async def _main(self) -> None:
        # Idle connections go after 1 s, before the server's keep-alive (uvicorn: 5 s) closes them.
        limits = httpx.Limits(max_connections=self.concurrency + 2, keepalive_expiry=1.0)
        timeout = httpx.Timeout(None, connect=10.0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout, limits=limits) as c:
            await asyncio.gather(*(self._one_client(c) for _ in range(self.concurrency)))

    def start(self) -> None:
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(),), name="pals-profile-load", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 120.0) -> None:
        """Stop sending; waits for the requests in flight."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)


def check_batch_knob(engine: VLLMEngine, batches: Sequence[int]) -> None:
    """A profile sweeps the batch limit: refuse an engine whose limit cannot change, or one
    started with a smaller ``--max-num-seqs`` than the largest batch."""
    reason = engine.batch_limit_unavailable_reason()
    if reason is not None:
        raise ConfigurationError(f"cannot profile this node: {reason}")
    engine.get_batch_limit()  # learns the engine's upper bound, if it has one
    upper = engine.max_batch_limit
    if upper is not None and max(batches) > upper:
        raise ConfigurationError(
            f"--batches goes up to {max(batches)} but vLLM was started with --max-num-seqs "
            f"{upper}: restart vLLM with --max-num-seqs {max(batches)} or sweep smaller batches"
        )


def profile_node(
    gpus: GPUGroup,
    engine: VLLMEngine,
    *,
    caps_w: Sequence[float],
    batches: Sequence[int],
    metadata: ProfileMetadata,
    load: SaturatingClient | None,
    warmup_s: float = 10.0,
    window_s: float = 20.0,
    sample_s: float = 0.5,
    progress: ProgressCallback | None = None,
    clock: Clock | None = None,
) -> Profile:
    """Sweep ``caps_w`` x ``batches`` on a real node under ``load`` (started before the first
    point and stopped after the last) and return the profile. The caps and the batch limit in
    force before are restored at the end (the sweep's own ``finally``)."""
    check_batch_knob(engine, batches)
    if load is not None:
        load.start()
    try:
        profile = run_profile_sweep(
            gpus,
            engine,
            clock or RealClock(),
            caps_w=caps_w,
            batches=batches,
            warmup_s=warmup_s,
            window_s=window_s,
            metadata=metadata,
            progress=progress,
            sample_s=sample_s,
        )
    finally:
        if load is not None:
            load.stop()
    if load is not None and load.completed == 0:
        raise EngineError(
            f"the load generator completed no request during the sweep ({len(load.errors)} "
            f"errors, first: {load.errors[:1]}); check --engine-url and --model"
        )
    return profile
