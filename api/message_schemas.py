"""The JSON Schemas of the messages (`domain.schema`), published for portals to validate against before
they send: `GET /v1/schemas` lists them, `/v1/schemas/envelope` is any message, `/v1/schemas/{type}`
one message type; and the AsyncAPI description of the Kafka topics (`api.asyncapi`) at `/asyncapi.json`.
Public, like `/openapi.json`: they describe the contract, not the ledger."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from fastapi import APIRouter, Path
from fastapi.responses import Response

from api import asyncapi
from api.errors import ProblemError, problems
from domain.commands import COMMANDS
from domain.schema import envelope_schema, message_schema

router = APIRouter(tags=["contract"])
MEDIA_TYPE = "application/schema+json"


@cache
def _published(type_: str) -> bytes:
    schema = envelope_schema() if type_ == "envelope" else message_schema(COMMANDS[type_])
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2)


@router.get("/v1/schemas")
def list_schemas() -> dict[str, Any]:
    """Where the JSON Schema (2020-12) of each message type is, and the envelope's (any of them)."""
    return {"envelope": "/v1/schemas/envelope", "types": {t: f"/v1/schemas/{t}" for t in sorted(COMMANDS)}}


@router.get("/v1/schemas/{type_}", response_class=Response, responses={
    200: {"content": {MEDIA_TYPE: {}}, "description": "a JSON Schema (2020-12)"}, **problems(404)})
def get_schema(type_: str = Path(description="a message type (`land.supplied`), or `envelope` for any")) -> Response:
    """The JSON Schema (2020-12) of a message type's envelope: what the parser accepts, stated for a
    validator (amounts compared as decimals); the contract's rules come after."""
    if type_ != "envelope" and type_ not in COMMANDS:
        raise ProblemError(404, "unknown_type", f"no message type {type_!r}: see /v1/schemas")
    return Response(_published(type_), media_type=MEDIA_TYPE)


@router.get("/asyncapi.json", response_class=Response, responses={
    200: {"content": {"application/json": {}}, "description": "an AsyncAPI 3.0 document"}})
def get_asyncapi() -> Response:
    """The AsyncAPI 3.0 description of every Kafka topic Yaosu reads or writes: keys, headers, payloads
    (the portal messages' are the schemas of `/v1/schemas/{type}`), bindings; `docs/asyncapi.json` is a copy."""
    return Response(asyncapi.published(), media_type="application/json")
