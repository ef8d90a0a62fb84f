"""Who is calling: the bearer token (hashed, compared with the tokens file) and what the store gives
each route. Every role reads (contract v1.1); what a token may submit is decided per message by the
pipeline, so a refused message is kept like any other rejection.

The console's session cookie stands for its token on reads only (the console links to the API's
downloads): a browser sends cookies with a request any page makes, so a cookie never writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.console.session import COOKIE, Session, opened
from api.errors import ProblemError
from infra.settings import Settings
from infra.tokens import Principal
from service.ledger import Ledger

#: The methods a session cookie may be used for: those that change nothing.
READ_METHODS = frozenset({"GET", "HEAD"})
_bearer = HTTPBearer(auto_error=False, description="a token from the tokens file (`yaosu tokens add`)")


async def caller(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if credentials is None or not credentials.credentials.strip():
        # The console's session (its pages link to exports of the API) stands for the token it was
        # opened with, on reads: another site's page can make this browser post with its cookie (CSRF).
        if request.method in READ_METHODS:
            # Whether it was signed out is a read of the store: off the event loop, which must stay free.
            signed_in = await run_in_threadpool(session_principal, request)
            if signed_in is not None:
                return signed_in
        raise ProblemError(401, "unauthenticated", "send Authorization: Bearer <token> (a console session only reads)")
    found = settings_of(request).principal(credentials.credentials.strip())
    if found is None:
        raise ProblemError(401, "unauthenticated", "unknown token")
    return found


def session_principal(request: Request) -> Principal | None:
    """Who is signed in to the console, if anyone (and their token is still in the tokens)."""
    session = open_session(request)
    return settings_of(request).tokens.get(session.token_sha256) if session else None


def open_session(request: Request) -> Session | None:
    """The console session the request's cookie names, unless it has expired or been signed out."""
    session = opened(request.cookies.get(COOKIE), settings_of(request).session_secret)
    if session is None or request.app.state.sessions.has_ended(session):
        return None
    return session


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


# The dependencies below only look things up: `async`, so FastAPI runs them on the event loop
# instead of handing each to a worker thread.
async def settings(request: Request) -> Settings:
    return settings_of(request)


async def ledger(request: Request) -> Ledger:
    return request.app.state.ledger  # type: ignore[no-any-return]


Caller = Annotated[Principal, Depends(caller)]
Store = Annotated[Ledger, Depends(ledger)]
Config = Annotated[Settings, Depends(settings)]
