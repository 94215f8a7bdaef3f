"""/v1/reports: list and read delivered-reduction reports (auditors, managers, admins); admins may
generate one now. A report reads as JSON, CSV or an HTML page with its plot (``?format=``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from gridlink.api.deps import AppSettings, DbSession, Now, require
from gridlink.api.types import INT4_MAX, BeforeId, Id
from gridlink.auth.permissions import Permission
from gridlink.auth.principal import Principal
from gridlink.reports import render, service
from gridlink.reports.schemas import ReportFormat, ReportGenerate, ReportOut, ReportSummary

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Reader = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]
Generator = Annotated[Principal, Depends(require(Permission.REPORTS_GENERATE))]


@router.get(
    "",
    response_model=list[ReportSummary],
    responses={
        404: {
            "description": "No such event (event_id).",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        }
    },
)
def list_reports(
    session: DbSession,
    _principal: Reader,
    event_id: Annotated[
        int | None, Query(ge=1, le=INT4_MAX, description="Reports on this event.")
    ] = None,
    before_id: BeforeId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ReportSummary]:
    """Newest first, every version (a correction lists beside the version it replaces)."""
    reports = service.list_reports(session, event_id=event_id, limit=limit, before_id=before_id)
    return [ReportSummary.model_validate(r) for r in reports]


@router.get(
    "/{report_id}",
    response_model=ReportOut,
    responses={200: {"content": {"text/csv": {}, "text/html": {}}}},
)
def get_report(
    report_id: Id,
    session: DbSession,
    _principal: Reader,
    format: Annotated[ReportFormat, Query(description="json, csv or html.")] = "json",
) -> ReportOut | Response:
    report = service.get_report(session, report_id)
    if format == "csv":
        name = f"report-{report.id}-v{report.version}.csv"
        return Response(
            render.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    if format == "html":
        return Response(render.to_html(report), media_type="text/html; charset=utf-8")
    return ReportOut.model_validate(report)


@router.post("", response_model=ReportOut, status_code=status.HTTP_201_CREATED)
def generate_report(
    body: ReportGenerate,
    response: Response,
    session: DbSession,
    principal: Generator,
    now: Now,
    settings: AppSettings,
) -> ReportOut:
    interval_s = body.interval_s or settings.report_interval_s
    if body.event_id is not None:
        inputs = service.event_inputs(
            session, body.event_id, interval_s=interval_s, settings=settings
        )
    else:
        assert body.start is not None and body.end is not None
        inputs = service.window_inputs(
            session, body.start, body.end, interval_s=interval_s, settings=settings
        )
    report, created = service.store(session, inputs, trigger="request", actor=principal, now=now)
    if not created:
        response.status_code = status.HTTP_200_OK
    return ReportOut.model_validate(report)
