"""Who is calling: the bearer token (hashed, compared with the tokens file) and what the store gives
each route. Every role reads (contract v1.1); what a token may submit is decided per message by the
pipeline, so a refused message is kept like any other rejection."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.console.session import COOKIE, opened
from api.errors import ProblemError
from infra.ledger import Ledger
from infra.settings import Settings
from infra.tokens import Principal

_bearer = HTTPBearer(auto_error=False, description="a token from the tokens file (`yaosu tokens add`)")


async def caller(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if credentials is None or not credentials.credentials.strip():
        # The console's session (its pages link to exports of the API) stands for the token it was opened with.
        signed_in = session_principal(request)
        if signed_in is not None:
            return signed_in
        raise ProblemError(401, "unauthenticated", "send Authorization: Bearer <token>")
    found = settings_of(request).principal(credentials.credentials.strip())
    if found is None:
        raise ProblemError(401, "unauthenticated", "unknown token")
    return found


def session_principal(request: Request) -> Principal | None:
    """Who is signed in to the console, if anyone (and their token is still in the tokens)."""
    digest = opened(request.cookies.get(COOKIE), settings_of(request).session_secret)
    return settings_of(request).tokens.get(digest) if digest else None


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
