"""A spec-true fake VTN: OpenADR 3.1 over HTTP on a loopback port, for the VEN's tests.

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

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from gridlink.openadr.schema import object_errors
from tests.gridlink.live import free_port


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


def build_app(vtn: FakeVtn) -> FastAPI:
    app = FastAPI()

    @app.get("/auth/server")
    def auth_server() -> Response:
        if not vtn.auth_server:
            return _problem(404, "not found")
        return vtn.respond("authServerInfo", {"tokenURL": f"{vtn.base_url}/auth/token"})

    @app.post("/auth/token")
    async def token(request: Request) -> Response:
        if not vtn.token_endpoint:
            return _problem(501, "This endpoint is not implemented")
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _problem(400, "the token request must be application/x-www-form-urlencoded")
        form = dict(parse_qsl((await request.body()).decode()))
        if "authorization" in request.headers and "client_id" in form:
            vtn.violations.append("token request with both Basic and form credentials")
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if vtn.token_auth == "basic":
            scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
            decoded = base64.b64decode(encoded).decode() if scheme.lower() == "basic" else ""
            ok = decoded == f"{vtn.client_id}:{vtn.client_secret}"
        else:
            if bad := vtn._check_in("clientCredentialRequest", form):
                return bad
            ok = (form["client_id"], form["client_secret"]) == (vtn.client_id, vtn.client_secret)
        if form.get("grant_type") != "client_credentials" or not ok:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issued = secrets.token_hex(8)
        vtn.tokens.add(issued)
        vtn.tokens_issued += 1
        body = {"access_token": issued, "token_type": "Bearer", "expires_in": vtn.token_lifetime_s}
        vtn._check_out("clientCredentialResponse", body)
        return JSONResponse(body | {"token_type": vtn.token_type})

    @app.get("/notifiers")
    def notifiers(request: Request) -> Response:
        if denied := vtn.authorised(request):
            return denied
        body: dict[str, Any] = {"WEBHOOK": True}
        if vtn.mqtt_broker is not None:
            host, port = vtn.mqtt_broker
            auth = {"method": "ANONYMOUS"}
            body["MQTT"] = {"URIS": [f"mqtt://{host}:{port}"], "serialization": "JSON"}
            body["MQTT"]["authentication"] = auth
        return vtn.respond("notifiersResponse", body)

    @app.get("/notifiers/mqtt/topics/events")
    @app.get("/notifiers/mqtt/topics/programs/{program_id}/events")
    def topics(request: Request, program_id: str | None = None) -> Response:
        if denied := vtn.authorised(request):
            return denied
        if vtn.mqtt_broker is None:
            return _problem(404, "no MQTT notifier")
        return vtn.respond("notifierTopicsResponse", {"topics": vtn.topics(program_id)})

    @app.get("/programs")
    def programs(request: Request) -> Response:
        if denied := vtn.authorised(request):
            return denied
        page = vtn.page(list(vtn.programs.values()), request)
        return page if isinstance(page, Response) else vtn.respond("program", page)

    @app.get("/events")
    def events(request: Request) -> Response:
        if denied := vtn.authorised(request):
            return denied
        program_id = request.query_params.get("programID")
        targets = set(request.query_params.getlist("targets"))
        if targets and vtn.refuse_targets_query:
            return _problem(vtn.refuse_targets_query, "filtering by targets is not supported")
        # read_targets: a targeted event is shown only to a client naming one of its targets
        items = [
            e
            for e in vtn.events.values()
            if program_id in (None, e["programID"])
            and (not e.get("targets") or targets & set(e["targets"]))
            and e["id"] not in vtn.hidden
        ]
        page = vtn.page(items, request)
        return page if isinstance(page, Response) else vtn.respond("event", page)

    @app.post("/reports")
    async def create_report(request: Request) -> Response:
        if denied := vtn.authorised(request):
            return denied
        body = await request.json()
        if bad := vtn._check_in("reportRequest", body):
            return bad
        event = vtn.events.get(body["eventID"]) or vtn.deleted.get(body["eventID"])
        if event is None:
            return _problem(404, f"event {body['eventID']} not found")
        if body.get("programID", event["programID"]) != event["programID"] or (
            vtn.require_report_program_id and "programID" not in body
        ):
            vtn.violations.append(f"report programID {body.get('programID')!r}")
            return _problem(400, "programID missing or not the event's")
        report = {
            "id": f"report-{len(vtn.reports) + 1}",
            "createdDateTime": _stamp(),
            "modificationDateTime": _stamp(),
            "objectType": "REPORT",
            "clientID": vtn.client_id,
            **body,
        }
        vtn.reports.append(report)
        return vtn.respond("report", report, 201)

    def _listing(kind: str, store: dict[str, dict[str, Any]], key: str) -> Any:
        async def handler(request: Request) -> Response:
            if denied := vtn.authorised(request):
                return denied
            wanted = request.query_params.get(key)
            items = [o for o in store.values() if wanted in (None, o.get(key))]
            page = vtn.page(items, request)
            return page if isinstance(page, Response) else vtn.respond(kind, page)

        return handler

    app.add_api_route("/vens", _listing("ven", vtn.vens, "venName"), methods=["GET"])
    app.add_api_route("/resources", _listing("resource", vtn.resources, "venID"), methods=["GET"])
    app.add_api_route(
        "/subscriptions",
        _listing("subscription", vtn.subscriptions, "clientName"),
        methods=["GET"],
    )

    @app.post("/vens")
    async def create_ven(request: Request) -> Response:
        if denied := vtn.authorised(request):
            return denied
        body = await request.json()
        if bad := vtn._check_in("venRequest", body):
            return bad
        ven_id = f"ven-{len(vtn.vens) + 1}"
        ven = {
            "id": ven_id,
            "createdDateTime": _stamp(),
            "modificationDateTime": _stamp(),
            "clientID": vtn.client_id,
            "venName": body["venName"],
            "objectType": "VEN",
        }
        vtn.vens[ven_id] = ven
        return vtn.respond("ven", ven, 201)

    @app.post("/resources")
    async def create_resource(request: Request) -> Response:
        if denied := vtn.authorised(request):
            return denied
        body = await request.json()
        if bad := vtn._check_in("resourceRequest", body):
            return bad
        resource_id = f"res-{len(vtn.resources) + 1}"
        resource = {
            "id": resource_id,
            "createdDateTime": _stamp(),
            "modificationDateTime": _stamp(),
            "clientID": vtn.client_id,
            "resourceName": body["resourceName"],
            "venID": body["venID"],
            "objectType": "RESOURCE",
        }
        vtn.resources[resource_id] = resource
        return vtn.respond("resource", resource, 201)

    @app.post("/subscriptions")
    async def create_subscription(request: Request) -> Response:
        if denied := vtn.authorised(request):
            return denied
        body = await request.json()
        if bad := vtn._check_in("subscriptionRequest", body):
            return bad
        for op in body["objectOperations"]:
            challenge = secrets.token_hex(6)
            try:
                answer = httpx.get(op["callbackUrl"], params={"echo": challenge}, timeout=10)
            except httpx.HTTPError as err:
                return _problem(400, f"callback unreachable: {err!r}")
            if answer.status_code != 200 or answer.text != challenge:
                return _problem(400, f"echo challenge failed: {answer.status_code} {answer.text}")
        subscription_id = f"sub-{len(vtn.subscriptions) + 1}"
        subscription = {
            "id": subscription_id,
            "createdDateTime": _stamp(),
            "modificationDateTime": _stamp(),
            "objectType": "SUBSCRIPTION",
            "clientID": vtn.client_id,
            **body,
        }
        vtn.subscriptions[subscription_id] = subscription
        return vtn.respond("subscription", subscription, 201)

    return app


class VtnServer:
    """The fake VTN on a loopback port; ``stop()`` kills it, ``start()`` brings it back on the
    same port (the VTN killed and restarted mid-event)."""

    def __init__(self, vtn: FakeVtn) -> None:
        self.vtn = vtn
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{vtn.context_path}"
        vtn.base_url = self.url
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        app = build_app(self.vtn)
        if self.vtn.context_path:
            outer = FastAPI()
            outer.mount(self.vtn.context_path, app)
            app = outer
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"fake-vtn-{self.port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the fake VTN did not start")
            time.sleep(0.02)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None


@contextmanager
def serve(vtn: FakeVtn) -> Iterator[VtnServer]:
    server = VtnServer(vtn)
    server.start()
    try:
        yield server
    finally:
        server.stop()
