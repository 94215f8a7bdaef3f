"""The VTN's REST interface as the VEN uses it, over httpx.

Why httpx and not openadr3-client's HTTP client: the client serialises optional fields as
explicit ``null`` (some VTNs reject that: here every ``None`` is dropped, ``omit_nulls``), names
subscription operations after HTTP verbs instead of READ/CREATE/UPDATE/DELETE, and does not page
with duplicates removed. Objects coming back are parsed with openadr3-client's 3.1 models where
they are interpreted (``mapping``).
"""

from __future__ import annotations

from typing import Any

import httpx

from gridlink.openadr.auth import TokenSource
from gridlink.openadr.errors import VtnError, problem_text

__all__ = ["VtnClient", "omit_nulls"]

MAX_PAGES = 200


def omit_nulls(value: Any) -> Any:
    """``value`` with every ``None`` dict entry removed, recursively."""
    if isinstance(value, dict):
        return {k: omit_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [omit_nulls(v) for v in value]
    return value


class VtnClient:
    def __init__(self, http: httpx.Client, base_url: str, tokens: TokenSource, page_limit: int):
        self._http = http
        self._base = base_url.rstrip("/")
        self._tokens = tokens
        self._page_limit = page_limit

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None) -> Any:
        """One request, with one retry after a 401 (an expired or revoked token)."""
        for attempt in (1, 2):
            token = self._tokens.token()
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            body = None if json is None else omit_nulls(json)
            try:
                response = self._http.request(
                    method, f"{self._base}{path}", params=params, json=body, headers=headers
                )
            except httpx.HTTPError as err:
                raise VtnError(f"{method} {path}: {err!r}", retryable=True) from err
            if response.status_code == 401 and attempt == 1:
                self._tokens.invalidate()
                continue
            if response.status_code >= 400:
                raise VtnError(
                    f"{method} {path}: {problem_text(response.status_code, response.text)}",
                    status=response.status_code,
                    retryable=response.status_code >= 500 or response.status_code in (401, 429),
                )
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError as err:
                raise VtnError(f"{method} {path}: the answer is not JSON", retryable=True) from err
        raise AssertionError("unreachable")

    def list_all(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every object of a list endpoint: pages of ``limit`` with ``skip``, duplicates (same
        ``id``, seen with some VTNs) removed. Raises on any failed page: a partial list must not
        be mistaken for the whole."""
        seen: dict[str, dict[str, Any]] = {}
        for page in range(MAX_PAGES):
            query = {**(params or {}), "skip": page * self._page_limit, "limit": self._page_limit}
            items = self.request("GET", path, params=query)
            if not isinstance(items, list):
                raise VtnError(f"GET {path}: expected a JSON array", retryable=True)
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    seen.setdefault(item["id"], item)
            if len(items) < self._page_limit:
                return list(seen.values())
        raise VtnError(f"GET {path}: more than {MAX_PAGES} pages", retryable=False)

    def events(
        self, program_id: str | None, targets: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Events of ``program_id`` (all programs: None); with ``targets``, those the VTN shows
        to a client naming these targets (repeated ``targets`` query parameters)."""
        params: dict[str, Any] = {}
        if program_id is not None:
            params["programID"] = program_id
        if targets:
            params["targets"] = targets
        return self.list_all("/events", params)
