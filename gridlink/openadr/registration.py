"""The VEN makes itself known: its VEN object, its resources (the facility as one resource, or
every node) and, when the gateway is reachable by the VTN, a webhook subscription.

A VTN that does not let VENs create these (403, 404, 405, 501) is logged and left alone: events
still arrive by polling. VTN-assigned ids are kept in ``openadr_state``.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from gridlink.db.engine import session_scope
from gridlink.models.openadr import OpenAdrState
from gridlink.nodes import repository as nodes_repository
from gridlink.openadr.errors import VtnError
from gridlink.openadr.vtn import VtnClient
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)

CALLBACK_PATH = "/v1/openadr/notifications"


def resource_names(session: Session, settings: GridlinkSettings) -> list[str]:
    if settings.openadr_resources == "nodes":
        return [n.name for n in nodes_repository.list_all(session)]
    return [settings.openadr_facility_resource]


def callback_url(settings: GridlinkSettings) -> str | None:
    if not settings.openadr_webhook_base_url:
        return None
    return settings.openadr_webhook_base_url.rstrip("/") + CALLBACK_PATH


def _save(factory: sessionmaker[Session], key: str, value: dict[str, Any]) -> None:
    with session_scope(factory) as session:
        row = session.get(OpenAdrState, key)
        if row is None:
            session.add(OpenAdrState(key=key, value=value))
        else:
            row.value = value


def load_state(session: Session, key: str) -> dict[str, Any]:
    row = session.get(OpenAdrState, key)
    return {} if row is None else dict(row.value)


def _allowed(err: VtnError, what: str) -> None:
    if err.retryable:
        raise err
    log.warning("the VTN does not let this VEN %s: %s", what, err)


def _ensure_ven(vtn: VtnClient, settings: GridlinkSettings) -> str | None:
    name = settings.openadr_ven_name
    found = [v for v in vtn.list_all("/vens", {"venName": name}) if v.get("venName") == name]
    if found:
        return str(found[0]["id"])
    created = vtn.request("POST", "/vens", json={"objectType": "VEN_VEN_REQUEST", "venName": name})
    return str(created["id"]) if isinstance(created, dict) and "id" in created else None


def _ensure_resources(vtn: VtnClient, ven_id: str, names: list[str]) -> dict[str, str]:
    existing = {
        r.get("resourceName"): r.get("id") for r in vtn.list_all("/resources", {"venID": ven_id})
    }
    ids = {str(k): str(v) for k, v in existing.items() if k in names and v}
    for name in names:
        if name in ids:
            continue
        body = {"objectType": "VEN_RESOURCE_REQUEST", "resourceName": name, "venID": ven_id}
        created = vtn.request("POST", "/resources", json=body)
        if isinstance(created, dict) and "id" in created:
            ids[name] = str(created["id"])
    return ids


def subscription_body(settings: GridlinkSettings, url: str) -> dict[str, Any]:
    token = settings.openadr_webhook_token
    return {
        "clientName": settings.openadr_ven_name,
        "objectOperations": [
            {
                "objects": ["EVENT"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "callbackUrl": url,
                "bearerToken": None if token is None else token.get_secret_value(),
            }
        ],
    }


def _ensure_subscription(vtn: VtnClient, settings: GridlinkSettings, url: str) -> str | None:
    mine = [
        s
        for s in vtn.list_all("/subscriptions", {"clientName": settings.openadr_ven_name})
        if any(op.get("callbackUrl") == url for op in s.get("objectOperations") or [])
    ]
    if mine:
        return str(mine[0]["id"])
    created = vtn.request("POST", "/subscriptions", json=subscription_body(settings, url))
    return str(created["id"]) if isinstance(created, dict) and "id" in created else None


def register(vtn: VtnClient, factory: sessionmaker[Session], settings: GridlinkSettings) -> None:
    """Register the VEN, its resources and its subscription (each where the VTN allows it)."""
    with session_scope(factory) as session:
        names = resource_names(session, settings)
    try:
        ven_id = _ensure_ven(vtn, settings)
    except VtnError as err:
        _allowed(err, "register itself")
        ven_id = None
    if ven_id is not None:
        _save(factory, "ven", {"id": ven_id, "name": settings.openadr_ven_name})
        try:
            _save(factory, "resources", _ensure_resources(vtn, ven_id, names))
        except VtnError as err:
            _allowed(err, "register its resources")
    url = callback_url(settings)
    if url is not None:
        try:
            subscription_id = _ensure_subscription(vtn, settings, url)
            _save(factory, "subscription", {"id": subscription_id, "callback_url": url})
        except VtnError as err:
            _allowed(err, "subscribe")
