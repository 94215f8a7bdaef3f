"""The real serving engine: a vLLM server (or a ``pals sim-node``, or ``pals proxy``) over HTTP.

Metrics come from vLLM's own Prometheus endpoint (``GET {base_url}/metrics``).

The batch limit: vLLM fixes ``max_num_seqs`` at start-up and has no stock API to change it while
serving. Three things speak the same small protocol for it::

    GET  .../pals/batch_limit   -> {"max_num_seqs": 256, ...}
    POST .../pals/batch_limit   <- {"max_num_seqs": 64}      -> {"max_num_seqs": 64, ...}

- the PALS scheduler plugin inside vLLM (:mod:`pals_core.vllm_plugin`), on its control channel
  (``control=`` here: ``unix:/run/pals/vllm.sock`` or ``127.0.0.1:8101``, the value of
  ``PALS_VLLM_CONTROL`` that vLLM was started with);
- ``pals proxy`` in front of a vLLM without the plugin, and ``pals sim-node``, on ``base_url``.

A lowered limit admits no new sequence until the running count falls below it; running sequences
finish normally. When none of these answers, :meth:`VLLMEngine.batch_limit_unavailable_reason`
says so and how to fix it, :meth:`get_batch_limit` reports the fixed start-up value and the
control loop keeps the batch where it is (cap-only).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from pals_core.engine.base import EngineMetrics, ServingEngine
from pals_core.engine.prometheus import parse_metrics
from pals_core.errors import ConfigurationError, EngineError
from pals_core.vllm_plugin.control import CONTROL_ENV, parse_control_address
from pals_core.vllm_plugin.history import HISTORY_PATH, Entry

BATCH_LIMIT_PATH = "/pals/batch_limit"
KEEPALIVE_S = 2.0
"""Idle connections to vLLM are dropped by this client after this long: under uvicorn's 5-s
keep-alive (vLLM's server), so the client closes first and never writes into a connection the
server is closing."""
NO_ANSWER_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
"""Errors of a request that got no answer: a connection not made (or not in time), or one broken
before any response header (a kept-alive connection vLLM closed as the request went out: its
keep-alive timer, a restart). Every request the engine sends is idempotent (a read, or setting
the limit to a value), so it is sent once more; ``pals proxy`` does the same."""
DEFAULT_FIXED_BATCH_LIMIT = 256
"""vLLM's ``--max-num-seqs`` default on GPU servers: the limit assumed without a batch knob."""
HOW_TO_ENABLE = (
    "start vLLM with `--scheduler-cls pals_core.vllm_plugin.PalsScheduler` and "
    f"{CONTROL_ENV}=unix:/run/pals/vllm.sock (the same address in the agent's {CONTROL_ENV}), "
    "or put `pals proxy` in front of vLLM and point the agent at it (docs/vllm.md)"
)


class VLLMEngine(ServingEngine):
    """A vLLM server at ``base_url``; its batch limit through ``control`` when given (the plugin's
    channel), else through ``base_url`` (``pals proxy``, ``pals sim-node``).

    ``fixed_batch_limit``: the ``--max-num-seqs`` vLLM runs with, reported when the limit cannot
    change. ``reprobe_s``: how long a failed probe of the batch knob is trusted before asking
    again (vLLM may start after the agent). Pass ``client`` to reuse a connection pool or to talk
    to an in-process app in tests; otherwise one is made (close it with :meth:`close`)."""

    def __init__(
        self,
        base_url: str,
        *,
        control: str | None = None,
        timeout_s: float = 2.0,
        client: httpx.Client | None = None,
        control_client: httpx.Client | None = None,
        fixed_batch_limit: int = DEFAULT_FIXED_BATCH_LIMIT,
        reprobe_s: float = 30.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"engine base_url must start with http:// or https://, got {base_url!r}"
            )
        if fixed_batch_limit < 1:
            raise ConfigurationError(f"fixed_batch_limit must be >= 1, got {fixed_batch_limit}")
        self.base_url = base_url.rstrip("/")
        self.fixed_batch_limit = fixed_batch_limit
        self.reprobe_s = reprobe_s
        self._owned: list[httpx.Client] = []
        self.retries = 0
        """Requests sent again because they got no answer (:data:`NO_ANSWER_ERRORS`)."""
        limits = httpx.Limits(keepalive_expiry=KEEPALIVE_S)
        self._client = (
            client
            if client is not None
            else self._own(httpx.Client(timeout=timeout_s, limits=limits))
        )
        self._control_url, self._control = self.base_url, self._client
        if control is not None:
            address = parse_control_address(control)
            if address.unix_path is not None:
                self._control_url = "http://pals-vllm-control"
                transport = httpx.HTTPTransport(uds=address.unix_path)
            else:
                self._control_url = f"http://{address.host}:{address.port}"
                transport = None
            self._control = (
                control_client
                if control_client is not None
                else self._own(httpx.Client(timeout=timeout_s, transport=transport, limits=limits))
            )
        self._probe: tuple[str | None, float] | None = None  # (reason, when probed)
        self._max_batch_limit: int | None = None

    def _own(self, client: httpx.Client) -> httpx.Client:
        self._owned.append(client)
        return client

    def _request(
        self, client: httpx.Client, base: str, method: str, path: str, json: Any = None
    ) -> httpx.Response:
        url = base + path
        try:
            try:
                response = client.request(method, url, json=json)
            except NO_ANSWER_ERRORS:
                self.retries += 1
                response = client.request(method, url, json=json)
        except httpx.HTTPError as err:
            raise EngineError(f"{method} {url} failed: {err!r}") from err
        if response.status_code >= 400:
            detail = response.text.strip()[:300]
            raise EngineError(f"{method} {url} returned HTTP {response.status_code}: {detail}")
        return response

    def metrics(self) -> EngineMetrics:
        scraped_at_s = time.monotonic()
        response = self._request(self._client, self.base_url, "GET", "/metrics")
        try:
            return parse_metrics(response.text, timestamp_s=scraped_at_s)
        except EngineError as err:
            raise EngineError(f"GET {self.base_url}/metrics: {err}") from err

    def _batch_state(self, response: httpx.Response) -> int:
        try:
            answer = response.json()
            value = answer["max_num_seqs"]
        except (ValueError, KeyError, TypeError) as err:
            raise EngineError(
                f"{response.request.method} {response.request.url} did not answer "
                f'{{"max_num_seqs": N}}: {response.text[:200]!r}'
            ) from err
        if not isinstance(value, int) or isinstance(value, bool):
            raise EngineError(f"{response.request.url} sent a non-integer max_num_seqs: {value!r}")
        upper = answer.get("max_num_seqs_max")
        if isinstance(upper, int) and not isinstance(upper, bool):
            self._max_batch_limit = upper
        return value

    def _get_batch_limit(self) -> int:
        return self._batch_state(
            self._request(self._control, self._control_url, "GET", BATCH_LIMIT_PATH)
        )

    def batch_limit_unavailable_reason(self) -> str | None:
        """Probed with a GET, and the answer trusted for ``reprobe_s`` seconds."""
        if self._probe is not None:
            reason, probed_at_s = self._probe
            if time.monotonic() - probed_at_s < self.reprobe_s:
                return reason
        reason = None
        try:
            self._get_batch_limit()
        except EngineError as err:
            reason = (
                f"the batch limit cannot be changed ({err}); max_num_seqs stays at "
                f"{self.fixed_batch_limit}. To enable it: {HOW_TO_ENABLE}"
            )
        self._probe = (reason, time.monotonic())
        return reason

    @property
    def max_batch_limit(self) -> int | None:
        """The highest limit the engine accepts (vLLM's start-up ``--max-num-seqs`` with the
        plugin), once known; None when the engine sets no bound."""
        return self._max_batch_limit

    def get_batch_limit(self) -> int:
        if self.batch_limit_unavailable_reason() is not None:
            return self.fixed_batch_limit
        return self._get_batch_limit()

    def set_batch_limit(self, max_num_seqs: int) -> None:
        """Set the limit, clamped to :attr:`max_batch_limit` (vLLM cannot grow past the buffers
        it was started with); EngineError when the engine has no batch knob."""
        if max_num_seqs < 1:
            raise ConfigurationError(f"max_num_seqs must be >= 1, got {max_num_seqs}")
        reason = self.batch_limit_unavailable_reason()
        if reason is not None:
            raise EngineError(reason)
        wanted = max_num_seqs
        if self._max_batch_limit is not None:
            wanted = min(wanted, self._max_batch_limit)
        answered = self._batch_state(
            self._request(
                self._control,
                self._control_url,
                "POST",
                BATCH_LIMIT_PATH,
                json={"max_num_seqs": wanted},
            )
        )
        if answered != wanted:
            raise EngineError(
                f"POST {self._control_url}{BATCH_LIMIT_PATH} set max_num_seqs={answered}, "
                f"not {wanted}"
            )

    def admission_history(self) -> list[Entry]:
        """The knob's own record of its admissions, oldest first: ``(t_s, running, waiting,
        limit)`` at every change of the running count or the limit, ``t_s`` on this host's
        monotonic clock (``time.monotonic()``). The plugin and ``pals proxy`` keep it."""
        response = self._request(self._control, self._control_url, "GET", HISTORY_PATH)
        try:
            return [
                (float(t), int(running), int(waiting), int(limit))
                for t, running, waiting, limit in response.json()["entries"]
            ]
        except (ValueError, KeyError, TypeError) as err:
            raise EngineError(
                f"GET {self._control_url}{HISTORY_PATH} did not answer an admission history: "
                f"{response.text[:200]!r}"
            ) from err

    def close(self) -> None:
        for client in self._owned:
            client.close()
