"""Errors of the OpenADR VEN."""

from __future__ import annotations

import json

from gridlink.errors import GridlinkError


class VtnError(GridlinkError):
    """The VTN could not be reached or refused a request. ``retryable``: worth trying again
    later (network, timeout, 5xx, 429); otherwise a configuration or protocol problem."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def problem_text(status: int, body: str) -> str:
    """``HTTP <status>`` and what the VTN said: the ``title``/``detail`` of a problem+json
    body (RFC 9457, the spec's ``problem`` schema), else the start of the body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and ("detail" in parsed or "title" in parsed):
        parts = [str(parsed[k]) for k in ("title", "detail") if parsed.get(k)]
        return f"HTTP {status} {': '.join(parts)}"[:400]
    return f"HTTP {status} {body[:300]}"
