"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from gridlink.models.audit import AuditEntry
from gridlink.models.auth import ApiToken, Role
from gridlink.models.budget import BudgetAllocations, BudgetVersion
from gridlink.models.event import Event, EventInterval, EventSource, EventStatus, SignalKind
from gridlink.models.node import Node, NodeStatus
from gridlink.models.openadr import OpenAdrEvent, OpenAdrEventState, OpenAdrState
from gridlink.models.price import PricePoint
from gridlink.models.report import Report, ReportHistoryInterval
from gridlink.models.schedule import ScheduleJob, ScheduleJobKind, ScheduleJobState
from gridlink.models.telemetry import (
    TelemetryLateArrival,
    TelemetryMinute,
    TelemetryRollup,
    TelemetrySample,
)

__all__ = [
    "ApiToken",
    "AuditEntry",
    "BudgetAllocations",
    "BudgetVersion",
    "Event",
    "EventInterval",
    "EventSource",
    "EventStatus",
    "Node",
    "NodeStatus",
    "OpenAdrEvent",
    "OpenAdrEventState",
    "OpenAdrState",
    "PricePoint",
    "Report",
    "ReportHistoryInterval",
    "Role",
    "ScheduleJob",
    "ScheduleJobKind",
    "ScheduleJobState",
    "SignalKind",
    "TelemetryLateArrival",
    "TelemetryMinute",
    "TelemetryRollup",
    "TelemetrySample",
]
