"""Errors of the OpenADR VEN."""

from __future__ import annotations

from gridlink.errors import GridlinkError


class VtnError(GridlinkError):
    """The VTN could not be reached or refused a request. ``retryable``: worth trying again
    later (network, timeout, 5xx, 429); otherwise a configuration or protocol problem."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
