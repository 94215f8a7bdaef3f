"""A spec-true fake VTN: OpenADR 3.1 over HTTP on a loopback port, for the VEN's tests (this module:
its state and behaviours; ``fake_vtn_app``: its routes and server).

Every request body the VEN sends and every response body it gets is validated against the
vendored ``openadr3.yaml``; a request that breaks the spec is answered 400 (as a strict VTN
would) *and* recorded in ``violations``, so tests can assert the VEN never broke it. Like some
real VTNs it refuses explicit ``null`` for optional fields, caps ``limit`` at 50, can return
duplicates across pages, checks the webhook callback with an echo challenge before creating a
subscription, and posts notifications with the subscription's bearer token.

The business-logic side (programs and events) is driven from Python: ``add_program``,
``put_event``, ``delete_event``.

Behaviours of independent VTNs it can take on (docs/openadr.md, "Interoperability"): no
``/auth/server`` (openadr-rs, openleadr-rs), no token endpoint (clj-oa3-vtn: 501, bearer tokens
issued out of band), a context path before the API (clj-oa3-vtn: ``/openadr3/3.1.0``), a token
type in lower case (openleadr-rs), the ``targets`` query refused (openadr-rs: 501), transpired
events no longer listed (clj-oa3-vtn lists events active from now on), ``programID`` required in
reports (3.0 VTNs). Always, like openleadr-rs: a token request with both HTTP Basic and form
credentials is refused (400 ``invalid_request``), ``limit`` outside 1..50 and a negative
``skip`` are refused, errors are ``application/problem+json``, a report on an unknown event is
refused (404).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from gridlink.openadr.schema import object_errors


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def _stamp() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeVtn:
    client_id: str = "ven-client"
    client_secret: str = "s3cret"
    token_auth: str = "basic"  # "basic" or "form": the one client authentication it accepts
    duplicate_pages: bool = False
    fail_with: int | None = None  # answer every API request with this status
    delay_s: float = 0.0  # answer every API request this late (a slow VTN)
    token_lifetime_s: int = 3600
    programs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    vens: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    tokens_issued: int = 0
    notifications_sent: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    auth_server: bool = True  # False: GET /auth/server is 404
    token_endpoint: bool = True  # False: POST /auth/token is 501
    token_type: str = "Bearer"
    context_path: str = ""  # e.g. "/openadr3/3.1.0": the API lives under it
    refuse_targets_query: int | None = None  # answer a targets query with this status
    hidden: set[str] = field(default_factory=set)  # events no longer listed (not deleted)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    require_report_program_id: bool = False
    mqtt_broker: tuple[str, int] | None = None  # publish notifications there (MQTT binding)
    mqtt_prefix: str = "OpenADR/3.1.0"

    # -- business logic side ----------------------------------------------------------------

    def add_program(self, program_id: str, name: str | None = None) -> dict[str, Any]:
        program = {
            "id": program_id,
            "createdDateTime": _stamp(),
            "modificationDateTime": _stamp(),
            "objectType": "PROGRAM",
            "programName": name or program_id,
        }
        self._check_out("program", program)
        self.programs[program_id] = program
        return program

    def put_event(self, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an event (``body`` is an eventRequest) and notify subscribers."""
        created = self.events.get(event_id, {}).get("createdDateTime", _stamp())
        operation = "UPDATE" if event_id in self.events else "CREATE"
        event = {
            "id": event_id,
            "createdDateTime": created,
            "modificationDateTime": _stamp(),
            "objectType": "EVENT",
            **body,
        }
        self.events[event_id] = event
        self._notify(operation, event)
        return event

    def delete_event(self, event_id: str) -> None:
        event = self.events.pop(event_id)
        self.deleted[event_id] = event  # reports on it are still taken
        self._notify("DELETE", event)

    def _notify(self, operation: str, event: dict[str, Any]) -> None:
        if self.mqtt_broker is not None:
            self._publish(operation, event)
        for subscription in list(self.subscriptions.values()):
            for op in subscription["objectOperations"]:
                if "EVENT" not in op["objects"] or operation not in op["operations"]:
                    continue
                body = {"objectType": "EVENT", "operation": operation, "object": event}
                self._check_out("notification", body)
                headers = {}
                if op.get("bearerToken"):
                    headers["Authorization"] = f"Bearer {op['bearerToken']}"
                response = httpx.post(op["callbackUrl"], json=body, headers=headers, timeout=10)
                self.notifications_sent.append({"body": body, "status": response.status_code})

    def topics(self, program_id: str | None) -> dict[str, str]:
        """Like clj-oa3-vtn: ``<prefix>/programs/<id>/events/<op>`` or ``<prefix>/events/<op>``."""
        base = (
            f"{self.mqtt_prefix}/programs/{program_id}/events"
            if program_id
            else (f"{self.mqtt_prefix}/events")
        )
        ops = {op: f"{base}/{op.lower()}" for op in ("CREATE", "UPDATE", "DELETE")}
        return {**ops, "ALL": f"{base}/+"}

    def _publish(self, operation: str, event: dict[str, Any]) -> None:
        import paho.mqtt.publish as publish

        assert self.mqtt_broker is not None
        body = {"objectType": "EVENT", "operation": operation, "object": event}
        self._check_out("notification", body)
        host, port = self.mqtt_broker
        for program_id in (event["programID"], None):
            topic = self.topics(program_id)[operation]
            publish.single(topic, json.dumps(body), qos=1, hostname=host, port=port)
        self.notifications_sent.append({"body": body, "mqtt": True})

    # -- validation helpers -----------------------------------------------------------------

    def _check_out(self, schema: str, body: Any) -> None:
        errors = object_errors(schema, body)
        if schema in ("ven", "resource"):
            # The 3.1.0 YAML makes these unsatisfiable: allOf objectMetadata (objectType VEN /
            # RESOURCE) and Bl*Request (objectType BL_VEN_REQUEST / BL_RESOURCE_REQUEST). The
            # fake sends the metadata's value and checks everything else.
            errors = [e for e in errors if not e.startswith("objectType:")]
        if errors:
            self.violations.append(f"VTN response {schema}: {errors}")
            raise AssertionError(f"the fake VTN would send an invalid {schema}: {errors}")

    def _check_in(self, schema: str, body: Any) -> JSONResponse | None:
        errors = object_errors(schema, body)
        if _has_null(body):
            errors.append("explicit null in the request body (omit optional fields)")
        if errors:
            self.violations.append(f"VEN request {schema}: {errors}")
            return _problem(400, f"invalid {schema}: {errors[0]}")
        return None

    def respond(self, schema: str, body: Any, status: int = 200) -> JSONResponse:
        if isinstance(body, list):
            for item in body:
                self._check_out(schema, item)
        else:
            self._check_out(schema, body)
        return JSONResponse(body, status_code=status)

    def authorised(self, request: Request) -> JSONResponse | None:
        self.requests.append((request.method, request.url.path))
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with is not None:
            return _problem(self.fail_with, "failing on purpose")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return _problem(401, "missing or unknown bearer token")
        return None

    def page(
        self, items: list[dict[str, Any]], request: Request
    ) -> list[dict[str, Any]] | Response:
        skip = int(request.query_params.get("skip", 0))
        limit = int(request.query_params.get("limit", 50))
        if limit > 50 or limit < 1 or skip < 0:
            self.violations.append(f"paging out of range: skip={skip} limit={limit}")
            return _problem(400, "limit must be in [1, 50] and skip >= 0")
        page = items[skip : skip + limit]
        if self.duplicate_pages and skip > 0 and items:
            page = [items[skip - 1], *page][:limit]  # repeat the last item of the previous page
        return page


def _problem(status: int, detail: str) -> JSONResponse:
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")
