"""`POST /v1/messages`: portal messages over HTTP, through the one message pipeline."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import schemas
from api.auth import Caller, Config, Store
from api.errors import ProblemError, problems
from api.json import JSON
from infra.parsing import ascii_integer
from infra.tokens import Principal
from service.ledger import Ledger
from service.pipeline import Result

router = APIRouter(tags=["messages"])

MAX_BODY_BYTES = 8 * 1024 * 1024
#: The roles whose tokens may submit at all (which department they may speak for, the pipeline decides).
SUBMITTING_ROLES = ("portal", "admin")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, counted while it is read: a chunked upload stops at the limit, not at its end."""
    too_large = ProblemError(413, "body_too_large", f"the body exceeds {limit} bytes", {"Connection": "close"})
    declared = ascii_integer(request.headers.get("content-length"))
    if declared is not None and declared > limit:  # refused before reading a byte
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/v1/messages",
    response_model=schemas.SubmitResponse,
    responses=problems(400, 401, 403, 413, 503),
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/MessagesBody"}}}}},
)
async def submit(request: Request, who: Caller, ledger: Store, settings: Config) -> Response:
    """Submit one envelope or an array of up to 1,000; one result per envelope, in order.

    A token whose role submits nothing (a supervisor's) is refused before its body is read: nothing
    is stored. A portal's or an admin's message goes through the pipeline, which keeps a message it
    refuses (a portal sending as another department: `forbidden`) like any other rejection."""
    if who.role not in SUBMITTING_ROLES:
        raise ProblemError(403, "forbidden", f"a {who.role}'s token reads; it does not submit messages",
                           {"Connection": "close"})  # its body is not read
    raw = await read_body(request)
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ProblemError(400, "malformed_json", f"the body is not JSON: {error}") from None
    if isinstance(body, dict):
        bodies = [body]
    elif isinstance(body, list):
        bodies = body
    else:
        raise ProblemError(400, "not_an_envelope", "the body must be an envelope object or an array of them")
    if len(bodies) > settings.max_batch:
        raise ProblemError(413, "batch_too_large", f"{len(bodies)} envelopes; a request carries at most {settings.max_batch}")
    results = await through_pipeline(ledger, bodies, who)
    return JSON({"results": [r.as_json() for r in results]})


async def through_pipeline(ledger: Ledger, bodies: list[Any], who: Principal) -> list[Result]:
    """The one way messages sent over HTTP get in, as `who` (this route's bodies, and the console's
    supervision forms, api/console/supervision_forms.py): the pipeline decides each, off the event loop."""
    return await run_in_threadpool(ledger.submit, bodies, principal=who, channel="http")
