"""GPUs of a ``pals sim-node`` reached over HTTP, behind the same :class:`GPU` interface as NVML.

With this backend and :class:`pals_core.engine.vllm.VLLMEngine`, the node agent drives a simulated
node over the network exactly as it drives a real one: reads come from ``GET /pals/gpus``, writes
go to ``POST /pals/power_limit``. Out-of-range values are refused before any request and unchanged
values are not sent, as with NVML. Readings are fetched per call (one request each); the sim-node
answers in well under a millisecond on loopback. Every request is idempotent (a read, or "set this
GPU's limit to X W"), so one that times out or whose connection fails is sent again, up to
``ATTEMPTS`` times in all: a sim-node stalled for a moment on a loaded machine (CI's, with a CPU
vLLM on every core) is not a failed GPU.
"""

from __future__ import annotations

from typing import Any

import httpx

from pals_core.device.gpu import GPU, GPUGroup, PowerLimitConstraints
from pals_core.errors import ConfigurationError, GPUError, GPUNotFoundError

ATTEMPTS = 3
"""Sends of one request before a transport error (timeout, refused, reset) is a GPUError."""


class _SimNodeClient:
    def __init__(self, base_url: str, client: httpx.Client | None, timeout_s: float) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"sim-node base_url must start with http:// or https://, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.owns_client = client is None
        self.client = client if client is not None else httpx.Client(timeout=timeout_s)

    def request(self, method: str, path: str, json: Any = None) -> Any:
        url = self.base_url + path
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.client.request(method, url, json=json)
                break
            except httpx.TransportError as err:
                if attempt == ATTEMPTS:
                    raise GPUError(f"{method} {url} failed {ATTEMPTS} times: {err!r}") from err
            except httpx.HTTPError as err:
                raise GPUError(f"{method} {url} failed: {err!r}") from err
        if response.status_code >= 400:
            raise GPUError(
                f"{method} {url} returned HTTP {response.status_code}: {response.text[:300]}"
            )
        try:
            return response.json()
        except ValueError as err:
            raise GPUError(f"{method} {url} did not answer JSON: {response.text[:200]!r}") from err

    def gpus(self) -> list[dict[str, Any]]:
        answer = self.request("GET", "/pals/gpus")
        if not isinstance(answer, list):
            raise GPUError(f"GET {self.base_url}/pals/gpus did not answer a list of GPUs")
        return answer


class SimNodeGPU(GPU):
    """One GPU of a sim-node (``position`` in the node's group)."""

    def __init__(self, api: _SimNodeClient, reading: dict[str, Any]) -> None:
        self._api = api
        self.position = int(reading["position"])
        self.index = int(reading["index"])
        self.uuid = str(reading["uuid"])
        self.name = str(reading["name"])
        self._constraints = PowerLimitConstraints(
            float(reading["min_w"]), float(reading["max_w"]), float(reading["default_w"])
        )

    def _read(self, field: str) -> Any:
        readings = self._api.gpus()
        if self.position >= len(readings):
            raise GPUNotFoundError(f"{self._api.base_url} no longer has GPU {self.position}")
        return readings[self.position][field]

    def power_limit_constraints(self) -> PowerLimitConstraints:
        return self._constraints

    def get_power_limit_w(self) -> float:
        return float(self._read("power_limit_w"))

    def set_power_limit_w(self, power_w: float) -> None:
        self._constraints.check(self.index, power_w)
        if round(self.get_power_limit_w() * 1000) == round(power_w * 1000):
            return
        self._api.request("POST", "/pals/power_limit", {"gpu": self.position, "watts": power_w})

    def get_power_w(self) -> float:
        return float(self._read("power_w"))

    def get_energy_j(self) -> float:
        return float(self._read("energy_j"))

    def get_sm_clock_mhz(self) -> float:
        return float(self._read("sm_clock_mhz"))

    def get_temperature_c(self) -> float:
        return float(self._read("temperature_c"))

    def get_memory_used_bytes(self) -> int:
        return int(self._read("memory_used_bytes"))


class SimNodeGPUGroup(GPUGroup):
    """A sim-node's GPUs; closing restores the limits it changed, then closes its client."""

    def __init__(self, gpus: list[SimNodeGPU], api: _SimNodeClient) -> None:
        super().__init__(gpus)
        self._api = api

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._api.owns_client:
                self._api.client.close()


def build_sim_node_gpu_group(
    base_url: str, *, client: httpx.Client | None = None, timeout_s: float = 2.0
) -> SimNodeGPUGroup:
    """The GPUs of the sim-node at ``base_url``."""
    api = _SimNodeClient(base_url, client, timeout_s)
    return SimNodeGPUGroup([SimNodeGPU(api, r) for r in api.gpus()], api)
