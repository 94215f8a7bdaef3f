"""The real serving engine: a vLLM server (or a ``pals sim-node``) reached over HTTP.

Metrics come from vLLM's own Prometheus endpoint (``GET {base_url}/metrics``).

The batch limit: vLLM fixes ``max_num_seqs`` at start-up and has no stock API to change it while
serving. pals_core therefore speaks a small admin endpoint that a vLLM plugin serves (and
``pals sim-node`` serves natively)::

    GET  {base_url}/pals/batch_limit            -> {"max_num_seqs": 256}
    POST {base_url}/pals/batch_limit            <- {"max_num_seqs": 64}
                                                -> {"max_num_seqs": 64}

A lowered limit admits no new sequence until the running count falls below it; running sequences
finish normally (vLLM's scheduler reads ``scheduler_config.max_num_seqs`` each step).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from pals_core.engine.base import EngineMetrics, ServingEngine
from pals_core.engine.prometheus import parse_metrics
from pals_core.errors import ConfigurationError, EngineError

BATCH_LIMIT_PATH = "/pals/batch_limit"


class VLLMEngine(ServingEngine):
    """A vLLM server at ``base_url``. Pass ``client`` to reuse a connection pool or to talk to an
    in-process app in tests; otherwise one is made (close it with :meth:`close`)."""

    def __init__(
        self, base_url: str, *, timeout_s: float = 2.0, client: httpx.Client | None = None
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"engine base_url must start with http:// or https://, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout_s)

    def _request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        url = self.base_url + path
        try:
            response = self._client.request(method, url, json=json)
        except httpx.HTTPError as err:
            raise EngineError(f"{method} {url} failed: {err!r}") from err
        if response.status_code >= 400:
            detail = response.text.strip()[:300]
            raise EngineError(f"{method} {url} returned HTTP {response.status_code}: {detail}")
        return response

    def metrics(self) -> EngineMetrics:
        scraped_at_s = time.monotonic()
        response = self._request("GET", "/metrics")
        try:
            return parse_metrics(response.text, timestamp_s=scraped_at_s)
        except EngineError as err:
            raise EngineError(f"GET {self.base_url}/metrics: {err}") from err

    def _batch_limit_from(self, response: httpx.Response) -> int:
        try:
            value = response.json()["max_num_seqs"]
        except (ValueError, KeyError, TypeError) as err:
            raise EngineError(
                f"{response.request.method} {response.request.url} did not answer "
                f'{{"max_num_seqs": N}}: {response.text[:200]!r}'
            ) from err
        if not isinstance(value, int) or isinstance(value, bool):
            raise EngineError(f"{response.request.url} sent a non-integer max_num_seqs: {value!r}")
        return value

    def get_batch_limit(self) -> int:
        return self._batch_limit_from(self._request("GET", BATCH_LIMIT_PATH))

    def set_batch_limit(self, max_num_seqs: int) -> None:
        if max_num_seqs < 1:
            raise ConfigurationError(f"max_num_seqs must be >= 1, got {max_num_seqs}")
        answered = self._batch_limit_from(
            self._request("POST", BATCH_LIMIT_PATH, json={"max_num_seqs": max_num_seqs})
        )
        if answered != max_num_seqs:
            raise EngineError(
                f"POST {self.base_url}{BATCH_LIMIT_PATH} set max_num_seqs={answered}, "
                f"not {max_num_seqs}"
            )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()
