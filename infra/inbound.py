"""What arrives (入站消息): a raw message made safe to hash, keep and parse.

Every way in (HTTP, Kafka, a JSON-lines file, the demo) hands the pipeline bytes or a decoded
JSON value. `inbound` turns either into an `Inbound`: the body in canonical form (an integral
number is an integer, so `5` and `5.0` are one body for idempotency), its hash, the text to keep
if it is rejected, and — before any rule runs — what refuses it outright: bytes that are not
JSON, nesting deeper than `MAX_DEPTH`, an envelope larger than `MAX_ENVELOPE_BYTES` (kept by its
first `KEPT_BYTES`, its length and its sha256, so nobody can store megabytes per message, yet
nothing is dropped unseen).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

import orjson

from domain.messages import message_id_of

MAX_DEPTH: Final = 64
MAX_ENVELOPE_BYTES: Final = 256 * 1024
KEPT_BYTES: Final = 4 * 1024
#: Integers beyond this are not exact as doubles, which is how most JSON readers hold numbers.
_EXACT = 2**53


@dataclass(frozen=True)
class Inbound:
    body: Any  # the canonical JSON value; None when the bytes were not JSON
    digest: str  # sha256 of the canonical JSON (of the bytes themselves when not JSON)
    text: str  # what a rejection keeps: the JSON, or the text received, or its first KiBs
    message_id: str | None
    size: int  # bytes of the envelope as received (or as canonical JSON)
    problem: str | None = None  # why it is refused before any rule runs
    truncated: bool = False


def inbound(raw: Any) -> Inbound:
    received: bytes | None = None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        received = bytes(raw)
        try:
            raw = orjson.loads(received)
        except orjson.JSONDecodeError as error:
            return _refused(received, f"the message is not JSON: {error}", None)
    if nested_deeper_than(raw, MAX_DEPTH):
        text = received if received is not None else _deep_dumps(raw).encode()
        return _refused(text, f"the message is nested deeper than {MAX_DEPTH} levels", message_id_of(raw))
    body = canonical(raw)
    encoded = orjson.dumps(body)
    size = len(received) if received is not None else len(encoded)
    if size > MAX_ENVELOPE_BYTES:
        return _refused(received or encoded, f"the envelope has {size} bytes; at most {MAX_ENVELOPE_BYTES} are taken",
                        message_id_of(body))
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Inbound(body=body, digest=digest, text=encoded.decode(), message_id=message_id_of(body), size=size)


def _refused(data: bytes, problem: str, message_id: str | None) -> Inbound:
    truncated = len(data) > MAX_ENVELOPE_BYTES
    kept = data[:KEPT_BYTES] if truncated else data
    return Inbound(body=None, digest=hashlib.sha256(data).hexdigest(), text=kept.decode("utf-8", errors="replace"),
                   message_id=message_id, size=len(data), problem=problem, truncated=truncated)


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (level by level, not recursing)."""
    level, depth = [value], 0
    while containers := [item for item in level if isinstance(item, (dict, list))]:
        depth += 1
        if depth > limit:
            return True
        level = [inner for c in containers for inner in (c.values() if isinstance(c, dict) else c)]
    return False


def canonical(value: Any) -> Any:
    """JSON's number semantics: an integral number is an integer, whichever way it was written."""
    if type(value) is float:
        return int(value) if value.is_integer() and abs(value) < _EXACT else value
    if type(value) is dict:
        return {key: canonical(item) for key, item in value.items()}
    if type(value) is list:
        return [canonical(item) for item in value]
    return value


def _deep_dumps(value: Any) -> str:
    """JSON text of a value nested too deep for `orjson.dumps` (which stops at 255 levels)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, dict):
            parts: list[Any] = []
            for key, inner in item.items():
                parts += [_Text(("," if parts else "") + orjson.dumps(str(key)).decode() + ":"), inner]
            stack.extend(reversed([_Text("{"), *parts, _Text("}")]))
        elif isinstance(item, list):
            parts = []
            for inner in item:
                parts += [_Text(","), inner] if parts else [inner]
            stack.extend(reversed([_Text("["), *parts, _Text("]")]))
        else:
            out.append(orjson.dumps(item).decode())
    return "".join(out)


@dataclass(frozen=True)
class _Text:
    """Literal JSON punctuation on the encoder's stack."""

    text: str
