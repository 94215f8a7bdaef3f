"""The fake VTN's HTTP side (``fake_vtn.FakeVtn`` holds its state and behaviours): the
OpenADR 3.1 routes, and the server on a loopback port that a test can stop and start again."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.gridlink.live import free_port
from tests.gridlink.openadr.fake_vtn import FakeVtn, _problem, _stamp

__all__ = ["VtnServer", "build_app", "serve"]


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
