"""Prometheus metrics (``/metrics``) and structured logging of the gateway."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from gridlink.observability.metrics import GatewayCollector, GatewayMetrics, MetricsMiddleware


def install(app: FastAPI) -> GatewayMetrics:
    """Count requests and serve ``GET /metrics`` (public, like ``/healthz``: Prometheus scrapes
    it without a token; it shows counts and power figures, no event or node details)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    metrics = GatewayMetrics()
    metrics.registry.register(GatewayCollector(app.state))
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        registry = request.app.state.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def watch_feed(app: FastAPI) -> None:
    """Count published versions and their deliveries (call once the allocation feed runs)."""
    feed = app.state.allocation_feed
    metrics: GatewayMetrics = app.state.metrics
    feed.add_observer(lambda _version_id: metrics.on_version(feed.subscriber_count))
