"""What the OpenADR VEN knows: every VTN event it has seen, and its own registration state.

One row per VTN event id. The event as received (``raw``) is kept with what became of it:
``accepted`` (it feeds the planner through ``event_id``, the current gridlink event version),
``ignored`` (nothing in it asks this facility for anything: not targeted, only unknown payloads,
SIMPLE level 0 ...), ``rejected`` (invalid: ``reason`` says why) or ``deleted`` (the VTN deleted
it; its gridlink event is cancelled). Report progress is kept here too, so a restart never posts a
report twice.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gridlink.db.base import Base, utcnow
from gridlink.models.types import str_enum


class OpenAdrEventState(enum.StrEnum):
    ACCEPTED = "accepted"
    IGNORED = "ignored"
    REJECTED = "rejected"
    DELETED = "deleted"


class OpenAdrEvent(Base):
    __tablename__ = "openadr_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    vtn_event_id: Mapped[str] = mapped_column(String(128), unique=True)
    program_id: Mapped[str | None] = mapped_column(String(128))
    modified_at: Mapped[datetime | None]
    # The anchor of a '0001-01-01' ("now") start: when this VEN first received the event.
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    state: Mapped[OpenAdrEventState] = mapped_column(
        str_enum(OpenAdrEventState, "openadr_event_state")
    )
    reason: Mapped[str | None] = mapped_column(String(512))
    ignored_payload_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Digest of what the event last mapped to: an unchanged event is skipped without touching
    # its gridlink event (polls repeat every event every time).
    mapped_digest: Mapped[str | None] = mapped_column(String(64))
    # Posted reports: [{"payload_types": [...], "report_id": ..., "at": ...}]; done once complete.
    reports_posted: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    report_done: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OpenAdrState(Base):
    """Small key/value state of the VEN: its VTN-assigned ven id, resource ids, subscription."""

    __tablename__ = "openadr_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
