"""The facility operations page: ``GET /`` (the shell) and the ``/ui`` endpoints it calls.

The shell is public and holds no data. Everything else needs a bearer token, which the page keeps
in the tab's ``sessionStorage`` and sends in the ``Authorization`` header (never in a URL):
HTML fragments rendered here (nodes, events with the curtailment form for writers, reports),
the chart's history as JSON, and ``/ui/stream``, the live feed (server-sent events read with
``fetch``, since ``EventSource`` cannot send a header). Writes go to the REST API itself
(``/v1/curtailments``), so the page shows the API's own validation errors.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from gridlink import __version__
from gridlink.api.deps import AppSettings, DbSession, Now, get_principal
from gridlink.auth.permissions import ROLE_MATRIX, Permission, check
from gridlink.auth.principal import Principal
from gridlink.budgets import service as budgets_service
from gridlink.curtailments import advice
from gridlink.curtailments import service as curtailments_service
from gridlink.db.engine import session_scope
from gridlink.errors import PermissionDeniedError
from gridlink.models.auth import Role
from gridlink.streams.broadcaster import Closed
from gridlink.streams.endpoints import SSE_HEADERS, Credentials
from gridlink.streams.sse import format_event
from gridlink.web import queries
from gridlink.web.facility import facility_now
from gridlink.web.live import FacilityFeed
from gridlink.web.views import group_events, signal_text

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
MAX_HISTORY_H = 24 * 7
MAX_AHEAD_H = 48
REPORTS_PREFIX = "/v1/reports"

router = APIRouter(include_in_schema=False)


@lru_cache
def templates() -> Jinja2Templates:
    built = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    built.env.filters["iso"] = _iso
    return built


def page_reader(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """Admin, manager or auditor; a node token cannot use the page."""
    if principal.role == Role.NODE:
        raise PermissionDeniedError(
            "a node token cannot sign in to the facility page: use an admin, manager or "
            "auditor token (gridlink token create --role manager)"
        )
    check(principal, Permission.FACILITY_READ)
    return principal


Reader = Annotated[Principal, Depends(page_reader)]


def can_write(principal: Principal) -> bool:
    return principal.role in {r.value for r in ROLE_MATRIX[Permission.CURTAILMENTS_WRITE]}


@router.get("/", response_class=HTMLResponse)
def page(request: Request, settings: AppSettings) -> Response:
    """The page shell: layout, sign-in form and the script; data comes after sign-in."""
    context = {
        "version": __version__,
        "facility_max_kw": settings.facility_max_kw,
        "planning_horizon_h": settings.planning_horizon_h,
        "refresh_s": settings.ui_refresh_s,
    }
    return templates().TemplateResponse(request, "page.html", context)


@router.get("/ui/session")
def ui_session(principal: Reader) -> dict[str, Any]:
    """Who the token belongs to, and whether the page shows write controls."""
    return {"role": principal.role, "name": principal.name, "can_write": can_write(principal)}


@router.get("/ui/history")
def ui_history(
    session: DbSession,
    _principal: Reader,
    now: Now,
    settings: AppSettings,
    hours: Annotated[float, Query(gt=0, le=MAX_HISTORY_H)] = 6.0,
    ahead_h: Annotated[float, Query(ge=0, le=MAX_AHEAD_H)] = 6.0,
) -> dict[str, Any]:
    """The chart's data: measured facility power over the last ``hours`` (bucketed to at most
    720 points), and the facility limit and GPU budget from ``hours`` ago to ``ahead_h`` ahead
    (steps: each segment's start and end)."""
    start, end = now - timedelta(hours=hours), now + timedelta(hours=ahead_h)
    bucket_s = queries.bucket_for(now - start)
    raw_since = now - timedelta(days=settings.telemetry_raw_retention_days)
    power = queries.facility_power_history(
        session,
        start=start,
        end=now,
        bucket_s=bucket_s,
        overhead_kw=settings.facility_overhead_kw,
        raw_since=raw_since,
    )
    timeline = budgets_service.timeline(
        session, start=start, end=max(end, now + timedelta(seconds=1)), now=now, settings=settings
    )
    return {
        "now": now.timestamp(),
        "start": start.timestamp(),
        "end": end.timestamp(),
        "bucket_s": bucket_s,
        "baseline_kw": timeline.baseline_kw,
        "power": {
            "t": [p.at.timestamp() for p in power],
            "kw": [round(p.facility_power_kw, 3) for p in power],
        },
        "limit": [
            [s.start.timestamp(), s.end.timestamp(), s.facility_limit_kw, s.gpu_budget_kw]
            for s in timeline.segments
        ],
    }


@router.get("/ui/fragments/nodes", response_class=HTMLResponse)
def nodes_fragment(
    request: Request, session: DbSession, _principal: Reader, now: Now, settings: AppSettings
) -> Response:
    feed = getattr(request.app.state, "allocation_feed", None)
    allocations = None if feed is None else feed.latest
    current = facility_now(session, now=now, settings=settings, allocations=allocations)
    return templates().TemplateResponse(request, "_nodes.html", {"facility": current})


@router.get("/ui/fragments/events", response_class=HTMLResponse)
def events_fragment(
    request: Request, session: DbSession, principal: Reader, now: Now, settings: AppSettings
) -> Response:
    """Upcoming, active and past curtailments by source with their versions; the change and
    cancel buttons only for roles that may write."""
    events = [
        curtailments_service.to_out(e, now)
        for e in curtailments_service.list_curtailments(
            session, include_superseded=True, limit=500, offset=0
        )
    ]
    for event in events:
        advice.with_warnings(session, event, now=now, settings=settings)
    context = {
        "groups": group_events(events),
        "signal_text": signal_text,
        "can_write": can_write(principal),
        "now": now,
    }
    return templates().TemplateResponse(request, "_events.html", context)


@router.get("/ui/fragments/form", response_class=HTMLResponse)
def form_fragment(request: Request, principal: Reader) -> Response:
    """The curtailment form, for roles that may write (empty for an auditor). Apart from the
    events fragment, so that reloading the list keeps what the form shows."""
    context = {"can_write": can_write(principal)}
    return templates().TemplateResponse(request, "_form.html", context)


@router.get("/ui/fragments/reports", response_class=HTMLResponse)
def reports_fragment(request: Request, _principal: Reader) -> Response:
    """The reports section: the list is read from the reports API when this gateway has one."""
    available = any(
        getattr(route, "path", "").startswith(REPORTS_PREFIX) for route in request.app.routes
    )
    context = {"available": available, "reports_api": REPORTS_PREFIX}
    return templates().TemplateResponse(request, "_reports.html", context)


def _admit(request: Request, credentials: Any) -> None:
    """The page's reader check, in its own short session (a stream must not hold one)."""
    with session_scope(request.app.state.sessionmaker) as session:
        page_reader(get_principal(session, credentials))


@router.get("/ui/stream")
async def ui_stream(request: Request, credentials: Credentials) -> StreamingResponse:
    """The live feed: a ``facility`` event every ``ui_refresh_s`` (limit, budget, power and
    every node's row) and a ``budget`` event at each new budget version."""
    feed: FacilityFeed = request.app.state.facility_feed
    await asyncio.to_thread(_admit, request, credentials)
    subscription = feed.subscribe()
    settings = request.app.state.settings

    async def events() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.stream_lifetime_s
        try:
            yield format_event(json.dumps({"refresh_s": settings.ui_refresh_s}), event="hello")
            while loop.time() < deadline:
                item = await subscription.get(timeout_s=settings.stream_heartbeat_s)
                if isinstance(item, Closed):
                    break
                yield item if item is not None else b": keep-alive\n\n"
            reason = subscription.drop_reason or "lifetime"
            yield format_event(
                json.dumps({"reason": reason}), event="reconnect", retry_ms=settings.stream_retry_ms
            )
        finally:
            subscription.close()

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")
