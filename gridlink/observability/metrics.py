"""Prometheus metrics of the gateway (``GET /metrics``, prometheus-client).

Each app has its own registry (no process-global state, so tests build as many apps as they
like). Counted as they happen: HTTP requests and their latency (by route template), budget
versions published and their deliveries to stream subscribers. Read at scrape time: stream
subscribers, scheduler leadership and boundary lag, the facility limit and GPU budget now,
measured fleet power, nodes by status and the telemetry ingest rate (one short read
transaction per scrape).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridlink.db.engine import session_scope
from gridlink.models.schedule import ScheduleJob, ScheduleJobState
from gridlink.models.telemetry import TelemetrySample
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)
INGEST_WINDOW_S = 60.0
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """The counters the code increments, and the registry ``/metrics`` renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gridlink_http_requests",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gridlink_http_request_duration_seconds",
            "Time to serve an HTTP request (for streams: the stream's lifetime).",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.versions_published = Counter(
            "gridlink_budget_versions_published",
            "Budget versions this process broadcast to its node streams.",
            registry=self.registry,
        )
        self.deliveries = Counter(
            "gridlink_stream_deliveries",
            "Allocation updates offered to node stream subscribers (versions x subscribers).",
            registry=self.registry,
        )

    def on_version(self, subscribers: int) -> None:
        self.versions_published.inc()
        self.deliveries.inc(subscribers)


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if str(scope.get("path", "")).startswith("/static/"):
        return "/static"
    return "unmatched"


class MetricsMiddleware:
    """Pure ASGI (streams pass through untouched): counts each HTTP request and times it."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method, route = scope.get("method", "GET"), route_label(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def _gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value)


class GatewayCollector(Collector):
    """Gauges read when Prometheus scrapes: from the app's state and the database."""

    def __init__(self, state: Any) -> None:
        self._state = state  # the app's ``state``: filled in by the lifespan

    def collect(self) -> Iterator[Metric]:
        state = self._state
        feed = getattr(state, "allocation_feed", None)
        page_feed = getattr(state, "facility_feed", None)
        subscribers = GaugeMetricFamily(
            "gridlink_stream_subscribers", "Open server-sent-event streams.", labels=["stream"]
        )
        subscribers.add_metric(["allocation"], 0 if feed is None else feed.subscriber_count)
        subscribers.add_metric(
            ["facility_page"], 0 if page_feed is None else page_feed.subscriber_count
        )
        yield subscribers
        if feed is not None:
            yield GaugeMetricFamily(
                "gridlink_stream_dropped_subscribers",
                "Node streams dropped as slow consumers since start.",
                value=feed.dropped_subscribers,
            )
        scheduler = getattr(state, "scheduler", None)
        yield GaugeMetricFamily(
            "gridlink_scheduler_leader",
            "1 when this replica's scheduler holds the leader lock.",
            value=1.0 if scheduler is not None and scheduler.is_leader else 0.0,
        )
        factory = getattr(state, "sessionmaker", None)
        settings: GridlinkSettings | None = getattr(state, "settings", None)
        if factory is None or settings is None:
            return
        try:
            with session_scope(factory) as session:
                yield from _database_metrics(session, settings, datetime.now(UTC))
        except Exception:
            log.exception("metrics: could not read the database")
            yield GaugeMetricFamily("gridlink_metrics_database_up", "Database read.", value=0)
        else:
            yield GaugeMetricFamily("gridlink_metrics_database_up", "Database read.", value=1)


def _database_metrics(
    session: Session, settings: GridlinkSettings, now: datetime
) -> Iterator[Metric]:
    from gridlink.budgets import service as budgets_service
    from gridlink.nodes import service as nodes_service
    from gridlink.telemetry import service as telemetry_service

    segment = budgets_service.timeline(
        session, start=now, end=now + timedelta(seconds=1), now=now, settings=settings
    ).segments[0]
    yield from _gauge(
        "gridlink_facility_limit_kw", "Facility limit in force.", segment.facility_limit_kw
    )
    yield from _gauge("gridlink_gpu_budget_kw", "GPU budget in force.", segment.gpu_budget_kw)
    power = telemetry_service.facility_power(session, now=now, settings=settings)
    yield from _gauge(
        "gridlink_fleet_power_kw",
        "Measured facility power: nodes' latest samples plus overhead.",
        power.facility_power_kw,
    )
    yield from _gauge("gridlink_fleet_gpu_power_kw", "Nodes' latest power.", power.gpu_power_kw)
    nodes = GaugeMetricFamily("gridlink_nodes", "Registered nodes by status.", labels=["status"])
    counts = {"online": 0, "stale": 0, "offline": 0}
    for node in nodes_service.list_nodes(session):
        status = nodes_service.status_at(node, now, settings).value
        counts[status] = counts.get(status, 0) + 1
    for status, count in counts.items():
        nodes.add_metric([status], count)
    yield nodes
    since = now - timedelta(seconds=INGEST_WINDOW_S)
    recent = session.scalar(select(func.count()).where(TelemetrySample.ts >= since)) or 0
    yield from _gauge(
        "gridlink_telemetry_ingest_samples_per_second",
        f"Telemetry samples stamped within the last {INGEST_WINDOW_S:g} s, per second.",
        recent / INGEST_WINDOW_S,
    )
    last = session.execute(
        select(ScheduleJob.due_at, ScheduleJob.fired_at)
        .where(ScheduleJob.state == ScheduleJobState.DONE, ScheduleJob.fired_at.is_not(None))
        .order_by(ScheduleJob.fired_at.desc())
        .limit(1)
    ).first()
    lag_s = math.nan  # no boundary fired yet
    if last is not None and last.fired_at is not None:
        lag_s = max(0.0, (last.fired_at - last.due_at).total_seconds())
    yield from _gauge(
        "gridlink_scheduler_boundary_lag_seconds",
        "How late the last budget boundary fired (fired_at - due_at); NaN before the first.",
        lag_s,
    )
