"""The operational endpoints of ``pals sim-node``: health, model list, vLLM's ``/metrics`` (with
the simulated GPUs' readings and vLLM's per-request latency histograms), and the PALS admin
endpoints the node agent drives (batch limit, power limits, GPU readings)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from pydantic import BaseModel, Field

from pals_core.engine.prometheus import ENGINE_INDEX, LABELS, render_metrics
from pals_core.errors import ConfigurationError
from pals_core.sim.engine_metrics import REQUEST_HISTOGRAM_DOCS
from pals_core.sim.server_openai import BadRequest

router = APIRouter()


class BatchLimitBody(BaseModel):
    max_num_seqs: int = Field(ge=1)


class PowerLimitBody(BaseModel):
    watts: float
    gpu: int | None = Field(default=None, ge=0, description="GPU position; null sets every GPU.")


@router.get("/health")
async def health() -> Response:
    return Response(status_code=200)


@router.get("/v1/models")
async def models(http: Request) -> dict[str, Any]:
    sim = http.app.state.sim
    config = sim["config"]
    card = {
        "id": config.model_name,
        "object": "model",
        "created": sim.get("created", 0),
        "owned_by": "vllm",
        "root": config.model,
        "parent": None,
        "max_model_len": config.max_model_len,
    }
    return {"object": "list", "data": [card]}


def _request_families(engine: Any, model_name: str) -> list[Metric]:
    labels = [model_name, ENGINE_INDEX]
    out: list[Metric] = []
    for name, h in engine.request_histograms().items():
        family = HistogramMetricFamily(name, REQUEST_HISTOGRAM_DOCS[name], labels=list(LABELS))
        buckets = [
            (repr(float(b)), float(c))
            for b, c in zip(h.upper_bounds_s, h.bucket_counts, strict=True)
        ]
        buckets.append(("+Inf", float(h.count)))
        family.add_metric(labels, buckets, h.sum_s)
        out.append(family)
    return out


def _gpu_families(sim: dict[str, Any]) -> list[Metric]:
    gpus = sim["node"].gpus
    power = GaugeMetricFamily(
        "pals_sim:gpu_power_watts", "Simulated GPU board power (W, NVML reading).", labels=["gpu"]
    )
    limit = GaugeMetricFamily(
        "pals_sim:gpu_power_limit_watts", "Simulated GPU power limit (W).", labels=["gpu"]
    )
    energy = CounterMetricFamily(
        "pals_sim:gpu_energy_joules", "Simulated GPU energy (J, NVML counter).", labels=["gpu"]
    )
    for position, gpu in enumerate(gpus):
        power.add_metric([str(position)], gpu.get_power_w())
        limit.add_metric([str(position)], gpu.get_power_limit_w())
        energy.add_metric([str(position)], gpu.get_energy_j())
    lag = GaugeMetricFamily(
        "pals_sim:pacing_lag_seconds",
        "Simulated time lost because the host could not keep up with wall time.",
        value=sim["pacer"].lag_s,
    )
    return [power, limit, energy, lag]


@router.get("/metrics")
async def metrics(http: Request) -> PlainTextResponse:
    sim = http.app.state.sim
    engine = sim["node"].engine
    name = sim["config"].model_name
    extra = _request_families(engine, name) + _gpu_families(sim)
    text = render_metrics(engine.metrics(), name, engine.get_batch_limit(), extra=extra)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/pals/batch_limit")
async def get_batch_limit(http: Request) -> dict[str, int]:
    return {"max_num_seqs": int(http.app.state.sim["node"].engine.get_batch_limit())}


@router.post("/pals/batch_limit")
async def set_batch_limit(body: BatchLimitBody, http: Request) -> dict[str, int]:
    engine = http.app.state.sim["node"].engine
    try:
        engine.set_batch_limit(body.max_num_seqs)
    except ConfigurationError as err:
        raise BadRequest(f"max_num_seqs: {err}", "max_num_seqs") from err
    return {"max_num_seqs": int(engine.get_batch_limit())}


def _power_state(gpus: Any) -> dict[str, Any]:
    c = gpus[0].power_limit_constraints()
    return {
        "power_limits_w": gpus.get_power_limits_w(),
        "min_w": c.min_w,
        "max_w": c.max_w,
        "default_w": c.default_w,
    }


def _gpu_reading(position: int, gpu: Any) -> dict[str, Any]:
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


@router.get("/pals/gpus")
async def list_gpus(http: Request) -> list[dict[str, Any]]:
    """Every simulated GPU's identity, range and current (NVML-granular) readings (the remote
    GPU backend, :mod:`pals_core.device.simnode`, reads these)."""
    return [_gpu_reading(i, gpu) for i, gpu in enumerate(http.app.state.sim["node"].gpus)]


@router.get("/pals/power_limit")
async def get_power_limit(http: Request) -> dict[str, Any]:
    return _power_state(http.app.state.sim["node"].gpus)


@router.post("/pals/power_limit")
async def set_power_limit(body: PowerLimitBody, http: Request) -> dict[str, Any]:
    gpus = http.app.state.sim["node"].gpus
    if body.gpu is not None and body.gpu >= len(gpus):
        raise BadRequest(f"gpu: must be within [0, {len(gpus) - 1}], got {body.gpu}", "gpu")
    positions = range(len(gpus)) if body.gpu is None else [body.gpu]
    for position in positions:  # check all first: nothing is half-written
        c = gpus[position].power_limit_constraints()
        if not c.min_w <= body.watts <= c.max_w:
            raise BadRequest(
                f"watts: {body.watts} W is outside GPU {position}'s allowed range "
                f"[{c.min_w:.1f}, {c.max_w:.1f}] W",
                "watts",
            )
    for position in positions:
        gpus[position].set_power_limit_w(body.watts)
    return _power_state(gpus)
