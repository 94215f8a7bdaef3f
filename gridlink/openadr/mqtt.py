"""The OpenADR 3.1 MQTT notifier binding, VEN side: event notifications from the VTN's broker.

``GET /notifiers`` says whether the VTN has an MQTT broker (``URIS``, ``serialization: JSON``,
``authentication``); ``GET /notifiers/mqtt/topics/programs/{programID}/events`` (or
``/notifiers/mqtt/topics/events`` when no program is configured) names the topics of the event
operations. Messages are the same notification objects a webhook receives and go through the
same ingestion (``OpenAdrVen.notify``); polling stays the safety net. Authentication:
``ANONYMOUS``, or ``OAUTH2_BEARER_TOKEN`` (username as the binding says, ``{clientID}``
replaced by this VEN's client id, the VEN's bearer token as password); ``CERTIFICATE`` is not
supported (logged). paho-mqtt is imported here only.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from gridlink.openadr.auth import TokenSource
from gridlink.openadr.errors import VtnError
from gridlink.openadr.vtn import VtnClient

__all__ = ["MqttNotifications", "broker_address", "event_topics"]

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 10.0
DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


def broker_address(uri: str) -> tuple[str, int, bool]:
    """``(host, port, tls)`` of a broker URI (``mqtt://``, ``mqtts://``, ``tcp://``)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise VtnError(f"MQTT broker URI {uri!r}: expected mqtt://host[:port]", retryable=False)
    return parts.hostname, parts.port or DEFAULT_PORTS[scheme], scheme in ("mqtts", "ssl")


def event_topics(answer: Any) -> list[str]:
    """The topics to subscribe to from a notifierTopicsResponse: ``ALL`` when the VTN offers
    it, else each operation's topic."""
    topics = answer.get("topics") if isinstance(answer, dict) else None
    if not isinstance(topics, dict):
        raise VtnError("MQTT topics: no 'topics' object in the answer", retryable=True)
    if isinstance(topics.get("ALL"), str):
        return [topics["ALL"]]
    return [t for op in ("CREATE", "UPDATE", "DELETE") if isinstance(t := topics.get(op), str)]


class MqttNotifications:
    """Keeps one MQTT subscription to the VTN's event topics; ``ensure()`` (the leader job)
    connects when not connected. ``received`` counts handled messages."""

    def __init__(
        self,
        vtn: VtnClient,
        tokens: TokenSource,
        *,
        program_ids: list[str],
        client_id: str | None,
        on_notification: Callable[[dict[str, Any]], object],
    ) -> None:
        self._vtn = vtn
        self._tokens = tokens
        self._program_ids = program_ids
        self._client_id = client_id
        self._on_notification = on_notification
        self._client: Any = None
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.received = 0
        self.topics: list[str] = []

    def _binding(self) -> dict[str, Any] | None:
        try:
            answer = self._vtn.request("GET", "/notifiers")
        except VtnError as err:
            if err.status in (404, 405, 501):
                return None
            raise
        binding = answer.get("MQTT") if isinstance(answer, dict) else None
        return binding if isinstance(binding, dict) else None

    def _topics(self) -> list[str]:
        if not self._program_ids:
            return event_topics(self._vtn.request("GET", "/notifiers/mqtt/topics/events"))
        topics: list[str] = []
        for program_id in self._program_ids:
            path = f"/notifiers/mqtt/topics/programs/{program_id}/events"
            topics += event_topics(self._vtn.request("GET", path))
        return topics

    def ensure(self) -> bool:
        """Connected and subscribed (connecting first if needed); False when the VTN has no
        usable MQTT binding. Raises VtnError when the VTN or the broker cannot be reached."""
        with self._lock:
            if self._client is not None and self._client.is_connected():
                return True
            self.close()
            binding = self._binding()
            if binding is None:
                log.info("the VTN offers no MQTT notifier; webhooks and polling only")
                return False
            self._connect(binding, self._topics())
            return True

    def _connect(self, binding: dict[str, Any], topics: list[str]) -> None:
        import paho.mqtt.client as paho  # the only importer of paho-mqtt

        auth = binding.get("authentication") or {}
        method = str(auth.get("method", "ANONYMOUS"))
        if method not in ("ANONYMOUS", "OAUTH2_BEARER_TOKEN"):
            raise VtnError(f"MQTT authentication {method} is not supported", retryable=False)
        uris = binding.get("URIS") or []
        if not uris:
            raise VtnError("MQTT binding without URIS", retryable=False)
        host, port, tls = broker_address(str(uris[0]))
        client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        if method == "OAUTH2_BEARER_TOKEN":
            username = str(auth.get("username", "{clientID}"))
            username = username.replace("{clientID}", self._client_id or "")
            client.username_pw_set(username, self._tokens.token())
        if tls:
            client.tls_set()
        client.on_message = self._message
        client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe([(t, 1) for t in topics])
        client.on_subscribe = lambda _c, _u, _mid, _codes, _p: self._subscribed.set()
        self._subscribed.clear()
        try:
            client.connect(host, port, keepalive=60)
        except OSError as err:
            raise VtnError(f"MQTT broker {host}:{port}: {err!r}", retryable=True) from err
        client.loop_start()
        self._client, self.topics = client, topics
        if not self._subscribed.wait(timeout=SUBSCRIBE_TIMEOUT_S):
            self.close()
            raise VtnError(f"MQTT broker {host}:{port}: no SUBACK", retryable=True)
        log.info("OpenADR MQTT: subscribed to %s at %s:%d", topics, host, port)

    def _message(self, _client: Any, _userdata: Any, message: Any) -> None:
        try:
            body = json.loads(message.payload)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            self._on_notification(body)
        except Exception:
            log.exception("OpenADR MQTT message on %s not handled", message.topic)
        finally:
            self.received += 1

    def close(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None
