"""413 for bodies over ``max_body_bytes``, in the one error shape (``{"detail": ...}``).

Framework body limits answer a too-large ``Content-Length`` in text/plain; this middleware
answers it in JSON before the app runs, and counts a body without ``Content-Length`` as it
streams in, raising a 413 ``HTTPException`` (JSON by the app's handler) once over the limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DETAIL = "Content Too Large"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await JSONResponse({"detail": DETAIL}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(status_code=413, detail=DETAIL)
            return message

        await self.app(scope, counting_receive, send)
