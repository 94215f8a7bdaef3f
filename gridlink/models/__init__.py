"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from gridlink.models.budget import BudgetVersion, NodeAllocation
from gridlink.models.event import Event, EventInterval, EventSource, EventStatus, SignalKind
from gridlink.models.node import Node, NodeStatus
from gridlink.models.schedule import ScheduleJob, ScheduleJobKind, ScheduleJobState
from gridlink.models.telemetry import TelemetrySample

__all__ = [
    "BudgetVersion",
    "Event",
    "EventInterval",
    "EventSource",
    "EventStatus",
    "Node",
    "NodeAllocation",
    "NodeStatus",
    "ScheduleJob",
    "ScheduleJobKind",
    "ScheduleJobState",
    "SignalKind",
    "TelemetrySample",
]
