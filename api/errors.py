"""Errors as `application/problem+json` with a stable `code`, and the guard around every request.

The guard answers a request for a host name that is not served with a 400 problem before anything
else (DNS rebinding), answers what no handler caught with a 500 problem and `Connection: close` (the
connection is not reused after a failure), and marks every answer `nosniff` and not to be framed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra import metrics
from infra.parsing import ascii_integer
from projections.db import NotBuilt
from projections.read import ReadModelBehind
from service.ledger import Contended

log = logging.getLogger("yaosu.api")

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 413: "Content Too Large", 500: "Internal Server Error",
          503: "Service Unavailable"}
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROJECT_CODE_PARAMETERS = {("path", "code"), ("query", "project")}
#: Where a route's read-model snapshot leaves the position its answer reflects (see api/reading.py).
POSITION_STATE = "yaosu_position"


class ProblemError(Exception):
    """An error answered as `application/problem+json` with a stable `code`."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None,
                 **more: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers, self.more = status, code, detail, headers, more


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None, **more: Any) -> Response:
    body = {"type": f"https://yaosu.example/problems/{code}", "title": TITLES.get(status, "Error"),
            "status": status, "detail": detail, "code": code, **more}
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entries of these problem statuses."""
    described = {400: "the request does not fit: a parameter, a header or the body",
                 401: "no bearer token, or an unknown one", 403: "the token's role may not do this",
                 404: "nothing is registered under that name", 413: "too many envelopes or bytes",
                 409: "not there yet: asked for before it can be (a month not over)",
                 503: "the store or a read model cannot answer yet"}
    # Not `"model": Problem`: FastAPI would file it under application/json too.
    return {status: {"description": described[status],
                     "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for status in statuses}


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, error: ProblemError) -> Response:
        return problem(error.status, error.code, error.detail, error.headers, **error.more)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        location = tuple(first.get("loc", ()))
        code = "invalid_project_code" if location in PROJECT_CODE_PARAMETERS else "invalid_request"
        return problem(400, code, f"{'.'.join(map(str, location))}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return problem(error.status_code, code, str(error.detail), dict(error.headers or {}))

    @app.exception_handler(Contended)
    async def _contended(_: Request, error: Contended) -> Response:
        # Others kept changing what this batch read, past its budget: nothing was stored; send it again.
        return problem(503, "contended", str(error), {"Retry-After": str(error.retry_after)})

    @app.exception_handler(NotBuilt)
    async def _not_built(_: Request, error: NotBuilt) -> Response:
        return problem(503, "read_model_not_ready", str(error))

    @app.exception_handler(ReadModelBehind)
    async def _behind(_: Request, error: ReadModelBehind) -> Response:
        return problem(503, "read_model_behind", str(error), {"Yaosu-Position": str(error.position),
                                                              "Retry-After": "1"}, position=error.position)

    app.add_middleware(Guard, allowed_hosts=app.state.settings.allowed_hosts)


def host_name(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The name in the request's one Host header, without its port (`[::1]` keeps its brackets);
    None if there is not exactly one, or it is not a name with an optional port."""
    found = [value for name, value in headers if name == b"host"]
    if len(found) != 1:
        return None
    text = found[0].decode("latin-1").lower()
    if text.startswith("["):
        end = text.find("]") + 1
        if end == 0:
            return None
        name, rest = text[:end], text[end:]
    else:
        name, colon, port = text.partition(":")
        rest = colon + port
    if rest and not (rest.startswith(":") and ascii_integer(rest[1:], 0, 65535) is not None):
        return None
    return name or None


class Guard:
    """Pure ASGI middleware: only the configured host names are served; `nosniff` and no framing on
    every answer; a failure becomes a 500 problem that closes the connection, instead of a connection
    reset; each request counted and timed."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...]) -> None:
        self.app = app
        self.allowed_hosts = frozenset(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, began = False, 500, time.perf_counter()

        async def send_marked(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                headers = [*message.get("headers", []), (b"x-content-type-options", b"nosniff"),
                           (b"x-frame-options", b"DENY")]  # beside the console's frame-ancestors, for old browsers
                position = scope.get("state", {}).get(POSITION_STATE)
                if position is not None:  # the snapshot the answer was read from (api/reading.py)
                    headers.append((b"yaosu-position", str(position).encode()))
                message["headers"] = headers
            await send(message)

        try:
            host = host_name(scope["headers"])
            if host not in self.allowed_hosts:
                # Before routing or reading a byte of the body: a page of another site's name that
                # resolves here (DNS rebinding) reaches nothing.
                await problem(400, "host_not_allowed", "this server does not serve that host name (see "
                              "YAOSU_ALLOWED_HOSTS)")(scope, receive, send_marked)
                return
            await self.app(scope, receive, send_marked)
        except ClientDisconnect:
            # Gone while its body was read (it hung up, or `yaosu serve` cut it off for being slow):
            # no one to answer, and nothing failed here.
            status = 499
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # halfway through an answer: only closing the connection is left
            answer = problem(500, "internal_error", "the server failed; nothing was stored by this request",
                             {"Connection": "close"})
            await answer(scope, receive, send_marked)
        finally:
            # By route template, not path: a path per project would be a series per project.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            metrics.HTTP_DURATION.labels(route, scope["method"]).observe(time.perf_counter() - began)
