"""The control channel between the PALS agent and vLLM's engine-core process.

The scheduler lives in vLLM's engine-core process, not in the API server that clients talk to,
so the plugin starts a small HTTP listener there, on the address in ``PALS_VLLM_CONTROL``:

- ``unix:/run/pals/vllm.sock`` (or an absolute path): a Unix socket, reachable only on the node
  and guarded by file permissions (the recommended form);
- ``127.0.0.1:8101`` (or ``http://127.0.0.1:8101``): TCP, for a loopback address.

It speaks the protocol of ``pals sim-node`` and ``pals proxy``::

    GET  /pals/batch_limit -> {"max_num_seqs": 8, "max_num_seqs_max": 256, "num_running": 5,
                               "num_waiting": 12, "limit_set_at_s": 1234.5,
                               "vllm_version": "0.32.0"}
    POST /pals/batch_limit <- {"max_num_seqs": 16}   (1 <= N <= max_num_seqs_max, else 400)
    GET  /pals/batch_limit/history -> {"clock": "monotonic",
                                       "entries": [[t_s, running, waiting, limit], ...]}

``limit_set_at_s`` and the history's times are on the node's monotonic clock
(:mod:`pals_core.vllm_plugin.history`): the history shows when a new limit took effect.

Only the standard library is used here: this module runs inside vLLM's process and is also the
agent's parser of the address.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

from pals_core.errors import ConfigurationError
from pals_core.vllm_plugin.history import HISTORY_PATH, AdmissionHistory

CONTROL_ENV = "PALS_VLLM_CONTROL"
BATCH_LIMIT_PATH = "/pals/batch_limit"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ControlAddress:
    unix_path: str | None = None
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"{self.host}:{self.port}"


def parse_control_address(text: str) -> ControlAddress:
    """``unix:/path``, ``/path``, ``host:port`` or ``http://host:port``; else ConfigurationError."""
    value = text.strip()
    if value.startswith("unix:"):
        value = value.removeprefix("unix:")
        if value.startswith("//"):
            value = value[2:]
    if value.startswith("/"):
        return ControlAddress(unix_path=value)
    host, sep, port = value.removeprefix("http://").rstrip("/").rpartition(":")
    if sep and host and port.isdigit() and 0 < int(port) < 65536:
        return ControlAddress(host=host.strip("[]"), port=int(port))
    raise ConfigurationError(
        f"{CONTROL_ENV}={text!r} is not a control address: use unix:/absolute/path.sock "
        "or host:port (e.g. 127.0.0.1:8101)"
    )


class BatchLimitRefused(ValueError):
    """A requested limit the scheduler cannot take; the message says what is allowed."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def control(self) -> _ControlServerMixin:
        return cast(_ControlServerMixin, self.server)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        if self.path == HISTORY_PATH:
            self._answer(200, self.control.get_history())
        elif self.path == BATCH_LIMIT_PATH:
            self._answer(200, self.control.get_state())
        else:
            self._answer(404, {"detail": f"the control channel serves {BATCH_LIMIT_PATH} only"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != BATCH_LIMIT_PATH:
            self._answer(404, {"detail": f"the control channel serves {BATCH_LIMIT_PATH} only"})
            return
        try:
            value = json.loads(raw)["max_num_seqs"]
            if not isinstance(value, int) or isinstance(value, bool):
                raise BatchLimitRefused(f"max_num_seqs must be an integer, got {value!r}")
            self._answer(200, self.control.set_limit(value))
        except (ValueError, KeyError, TypeError) as err:
            detail = str(err) if isinstance(err, BatchLimitRefused) else repr(err)
            self._answer(400, {"detail": f'expected {{"max_num_seqs": N}}: {detail}'})

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("pals control: " + format, *args)


class _ControlServerMixin:
    get_state: Callable[[], dict[str, Any]]
    set_limit: Callable[[int], dict[str, Any]]
    get_history: Callable[[], dict[str, Any]]


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer, _ControlServerMixin):
    daemon_threads = True


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer, _ControlServerMixin):
    daemon_threads = True
    allow_reuse_address = True


def _clear_stale_socket(path: str) -> None:
    """Remove a socket file left by a dead process; refuse one that a live process answers on."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigurationError(f"{CONTROL_ENV}: {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise ConfigurationError(f"{CONTROL_ENV}: another process is listening on {path}")


class ControlServer:
    """The listener, served from a daemon thread. ``get_state()``, ``set_limit(n)`` and
    ``get_history()`` are called on that thread and must be thread-safe (an int attribute write
    is, under the GIL)."""

    def __init__(
        self,
        address: ControlAddress,
        get_state: Callable[[], dict[str, Any]],
        set_limit: Callable[[int], dict[str, Any]],
        get_history: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.address = address
        server: _UnixServer | _TCPServer
        if address.unix_path is not None:
            os.makedirs(os.path.dirname(address.unix_path) or ".", exist_ok=True)
            _clear_stale_socket(address.unix_path)
            server = _UnixServer(address.unix_path, _Handler)
            os.chmod(address.unix_path, 0o660)
        else:
            server = _TCPServer((address.host or "127.0.0.1", address.port or 0), _Handler)
        server.get_state = get_state
        server.set_limit = set_limit
        server.get_history = get_history or AdmissionHistory().as_json
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="pals-control",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self.address.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address.unix_path)
