"""Gateway fixtures: settings, a virtual clock, the app wired to the rolled-back test session,
and tokens of every role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gridlink.api.deps import get_now, get_session, unit_of_work
from gridlink.app import create_app
from gridlink.auth.principal import SYSTEM
from gridlink.auth.service import create_token
from gridlink.budgets.events import RecordingPublisher
from gridlink.models.auth import Role
from gridlink.settings import GridlinkSettings

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)


@dataclass
class VirtualClock:
    """The API's ``now``; tests move it explicitly (no sleeping)."""

    now: datetime = T0

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, at: datetime) -> datetime:
        self.now = at
        return at


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def settings(database_url: str) -> GridlinkSettings:
    return GridlinkSettings(
        database_url=database_url,
        facility_max_kw=100.0,
        facility_overhead_kw=10.0,
        baseline_fixed_kw=100.0,  # pinned: the default fits the registered fleet
        node_stale_after_s=60.0,
        node_offline_after_s=24 * 3600.0,
        planning_horizon_h=24.0,
        max_body_bytes=200_000,
        telemetry_max_batch=1000,
    )


@dataclass
class Api:
    """The test client plus what tests need to drive it."""

    client: TestClient
    app: FastAPI
    session: Session
    clock: VirtualClock
    settings: GridlinkSettings
    publisher: RecordingPublisher
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, role: str, node_id: int | None = None) -> dict[str, str]:
        key = f"{role}:{node_id}"
        if key not in self.tokens:
            plaintext, _ = create_token(
                self.session,
                role=Role(role),
                name=key,
                node_id=node_id,
                actor=SYSTEM,
                now=self.clock.now,
            )
            self.session.commit()
            self.tokens[key] = plaintext
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    def request(
        self, method: str, url: str, *, role: str = "admin", node_id: int | None = None, **kw: Any
    ) -> Any:
        headers = self.token(role, node_id) if role else {}
        return self.client.request(method, url, headers=headers, **kw)

    def register_node(self, name: str, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": name,
            "gpu_type": "H100-SXM",
            "gpu_count": 8,
            "gpu_min_cap_w": 200.0,
            "gpu_max_cap_w": 700.0,
            "idle_power_w": 400.0,
            "flexibility_tier": 1,
            **overrides,
        }
        response = self.request("POST", "/v1/nodes", json=body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def api(db_session: Session, settings: GridlinkSettings, clock: VirtualClock) -> Iterator[Api]:
    app = create_app(settings)
    publisher = RecordingPublisher()
    app.state.publisher = publisher

    def session_override() -> Iterator[Session]:
        yield from unit_of_work(db_session)

    app.dependency_overrides[get_session] = session_override
    app.dependency_overrides[get_now] = lambda: clock.now
    with TestClient(app) as client:
        app.state.publisher = publisher
        yield Api(client, app, db_session, clock, settings, publisher)


Iso = Callable[[datetime], str]


def iso(at: datetime) -> str:
    return at.isoformat()
