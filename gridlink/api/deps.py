"""Request dependencies. The session dependency owns commit and rollback.

Work that must only happen once the transaction is durable (publishing a new budget version to
the node streams) is registered with :func:`after_commit` and run by the session dependency right
after its commit; on rollback it is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth import service as auth_service
from gridlink.auth.permissions import Permission, check
from gridlink.auth.principal import Principal
from gridlink.errors import AuthenticationError
from gridlink.settings import GridlinkSettings

_AFTER_COMMIT_KEY = "gridlink.after_commit"
logger = logging.getLogger(__name__)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` after the request's transaction commits (never if it rolls back)."""
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(callback)


def unit_of_work(session: Session) -> Iterator[Session]:
    """Yield ``session``; commit and run the after-commit callbacks, or roll back on error."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.info.pop(_AFTER_COMMIT_KEY, None)
        session.rollback()
        raise
    callbacks = session.info.pop(_AFTER_COMMIT_KEY, [])
    for callback in callbacks:
        try:
            callback()
        except Exception:
            # The transaction is durable; a failed notification must not turn it into an
            # error response. Subscribers catch up from the database.
            logger.exception("after-commit callback failed")


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


def get_session(
    factory: Annotated[sessionmaker[Session], Depends(get_sessionmaker)],
) -> Iterator[Session]:
    """One session per request: committed when the endpoint returns, rolled back if it raises."""
    session = factory()
    try:
        yield from unit_of_work(session)
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_session, scope="function")]


def get_app_settings(request: Request) -> GridlinkSettings:
    settings: GridlinkSettings = request.app.state.settings
    return settings


AppSettings = Annotated[GridlinkSettings, Depends(get_app_settings)]


def get_now() -> datetime:
    """The request's notion of now. Tests override this with a virtual clock."""
    return datetime.now(UTC)


Now = Annotated[datetime, Depends(get_now)]

_bearer = HTTPBearer(auto_error=False, description="gridlink API token (`gridlink token create`)")


def get_principal(
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("missing bearer token (Authorization: Bearer <token>)")
    principal = auth_service.authenticate(session, credentials.credentials.strip())
    if principal is None:
        raise AuthenticationError("invalid or revoked token")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    """A dependency that authenticates and then checks ``permission`` against the role matrix."""

    def dependency(principal: CurrentPrincipal) -> Principal:
        check(principal, permission)
        return principal

    return dependency
