"""OAuth2 client credentials for the VEN: token URL from the VTN's ``/auth/server`` discovery,
token cached and renewed before it expires.

Why not openadr3-client's ``OAuthTokenManager``: it takes a fixed token URL (no discovery) and
lets requests-oauthlib choose one client-authentication style, while real VTNs differ (some want
``client_id``/``client_secret`` in the form body, others HTTP Basic). Both are configurable
here, and never sent both at once (openleadr-rs answers 400 ``invalid_request`` to that). A
VTN without ``/auth/server`` (404/405/501, seen with openadr-rs and openleadr-rs) gets the
spec's ``/auth/token`` under the VTN URL; a VTN without a token endpoint (``/auth/token``
answers 501, seen with clj-oa3-vtn) is used with a bearer token issued out of band
(``static_token``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import urljoin

import httpx

from gridlink.openadr.errors import VtnError, problem_text

__all__ = ["TokenSource"]

RENEW_BEFORE_S = 30.0
DEFAULT_EXPIRES_S = 3600.0
NO_DISCOVERY = (404, 405, 501)  # /auth/server absent: use the spec's /auth/token


class TokenSource:
    """Bearer tokens for the VTN. ``token()`` is thread-safe; None when no credentials are set
    (a VTN that needs none)."""

    def __init__(
        self,
        http: httpx.Client,
        vtn_url: str,
        *,
        client_id: str | None,
        client_secret: str | None,
        style: Literal["basic", "form"],
        scope: str | None = None,
        static_token: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._vtn_url = vtn_url.rstrip("/") + "/"
        self._client_id = client_id
        self._client_secret = client_secret
        self._style = style
        self._scope = scope
        self._static_token = static_token
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._token_url: str | None = None
        self.fetches = 0

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def token(self) -> str | None:
        if self._static_token:
            return self._static_token
        if not self._client_id or not self._client_secret:
            return None
        with self._lock:
            if self._token is not None and self._monotonic() < self._expires_at - RENEW_BEFORE_S:
                return self._token
            self._token, lifetime_s = self._fetch()
            self._expires_at = self._monotonic() + lifetime_s
            return self._token

    def _discover(self) -> str:
        if self._token_url is None:
            try:
                body = self._json("GET", urljoin(self._vtn_url, "auth/server"))
            except VtnError as err:
                if err.status not in NO_DISCOVERY:
                    raise
                body = {"tokenURL": "auth/token"}
            token_url = body.get("tokenURL") if isinstance(body, dict) else None
            if not isinstance(token_url, str) or not token_url:
                raise VtnError("GET /auth/server: no tokenURL in the answer", retryable=True)
            self._token_url = urljoin(self._vtn_url, token_url)
        return self._token_url

    def _fetch(self) -> tuple[str, float]:
        assert self._client_id is not None and self._client_secret is not None
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        auth: tuple[str, str] | None = None
        if self._style == "basic":
            auth = (self._client_id, self._client_secret)
        else:
            form |= {"client_id": self._client_id, "client_secret": self._client_secret}
        answer = self._json("POST", self._discover(), data=form, auth=auth)
        body = answer if isinstance(answer, dict) else {}
        token = body.get("access_token")
        kind = str(body.get("token_type", ""))
        if not isinstance(token, str) or not token or kind.lower() != "bearer":
            raise VtnError("token endpoint: no Bearer access_token in the answer", retryable=False)
        self.fetches += 1
        expires = body.get("expires_in")
        lifetime = float(expires) if isinstance(expires, int | float) and expires > 0 else None
        return token, lifetime or DEFAULT_EXPIRES_S

    def _json(self, method: str, url: str, **kw: object) -> object:
        try:
            response = self._http.request(method, url, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError as err:
            raise VtnError(f"{method} {url}: {err!r}", retryable=True) from err
        if response.status_code >= 400:
            raise VtnError(
                f"{method} {url}: {problem_text(response.status_code, response.text)}",
                status=response.status_code,
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        try:
            return response.json()
        except ValueError as err:
            raise VtnError(f"{method} {url}: the answer is not JSON", retryable=True) from err
