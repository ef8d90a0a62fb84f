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

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import orjson

from domain.envelope import MAX_DIGITS, message_id_of
from domain.texts import Detail
from infra.catalogue import said
from infra.kafka import KafkaOrigin
from infra.parsing import MAX_DEPTH

MAX_ENVELOPE_BYTES: Final = 256 * 1024
KEPT_BYTES: Final = 4 * 1024
#: Integers beyond this are not exact as doubles, which is how most JSON readers hold numbers.
_EXACT = 2**53
#: Where a number with more digits than a double keeps could be: a run of more than `MAX_DIGITS`
#: digits (and a point). Only then is the text read again, exactly, to look (inside a string such a
#: run is harmless, and the second reading says so).
_LONG_NUMBER = re.compile(rb"[0-9.]{%d,}" % (MAX_DIGITS + 1))


@dataclass(frozen=True)
class Inbound:
    body: Any  # the canonical JSON value; None when refused before parsing (see `problem`)
    digest: str  # sha256 of the canonical JSON (of the bytes themselves when not JSON)
    message_id: str | None
    size: int  # bytes of the envelope as received (or as canonical JSON)
    refusal: Detail | None = None  # why it is refused before any rule runs (an `invalid.…` text)
    truncated: bool = False
    kept: str | None = None  # the text kept of a message refused outright
    #: From Kafka: the record's key (base64, as kept with a rejection or a parked message) and
    #: where it was read.
    key: str | None = None
    origin: KafkaOrigin | None = None

    @property
    def problem(self) -> str | None:
        """Why it is refused before any rule runs, in English."""
        return said(self.refusal.code, self.refusal.params) if self.refusal is not None else None

    @property
    def text(self) -> str:
        """What a rejection keeps: the JSON, or the text received, or its first KiBs."""
        return self.kept if self.kept is not None else orjson.dumps(self.body).decode()


def inbound(raw: Any, *, key: bytes | None = None, origin: KafkaOrigin | None = None) -> Inbound:
    """What arrived (bytes, or JSON already decoded), made safe; `key` and `origin` from Kafka."""
    arrival = {"key": base64.b64encode(key).decode() if key is not None else None, "origin": origin}
    received: bytes | None = None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        received = bytes(raw)
        try:
            raw = orjson.loads(received)
        except orjson.JSONDecodeError as error:
            return _refused(received, Detail("invalid.not_json", {"error": error.msg, "line": error.lineno,
                                                                  "column": error.colno, "char": error.pos}),
                            None, arrival)
        rounded = _rounded_number(received)
        if rounded is not None:
            return _refused(received, Detail("invalid.rounded_number", {"number": rounded, "max": MAX_DIGITS}),
                            message_id_of(raw), arrival)
    try:
        body = canonical(raw, MAX_DEPTH)
    except _TooDeep:
        text = received if received is not None else _deep_dumps(raw).encode()
        return _refused(text, Detail("invalid.too_deep", {"max": MAX_DEPTH}), message_id_of(raw), arrival)
    encoded = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    size = len(received) if received is not None else len(encoded)
    if size > MAX_ENVELOPE_BYTES:
        return _refused(received or orjson.dumps(body),
                        Detail("invalid.too_large", {"size": size, "max": MAX_ENVELOPE_BYTES}), message_id_of(body),
                        arrival)
    return Inbound(body=body, digest=hashlib.sha256(encoded).hexdigest(), message_id=message_id_of(body), size=size,
                   **arrival)


def _rounded_number(received: bytes) -> str | None:
    """The first number in a JSON text that a double would round (more than `MAX_DIGITS` significant
    digits), as written; None if there is none. orjson reads numbers as doubles, so the digits lost
    can only be seen in the text itself."""
    if _LONG_NUMBER.search(received) is None:
        return None
    found: list[str] = []

    def looked_at(literal: str) -> float:
        if not found and len(Decimal(literal).normalize().as_tuple().digits) > MAX_DIGITS:
            found.append(literal)
        return 0.0

    try:
        json.loads(received, parse_float=looked_at)
    except (ValueError, RecursionError):  # too deep for this reader: refused for its depth instead
        return None
    return found[0] if found else None


def _refused(data: bytes, refusal: Detail, message_id: str | None, arrival: dict[str, Any]) -> Inbound:
    truncated = len(data) > MAX_ENVELOPE_BYTES
    kept = data[:KEPT_BYTES] if truncated else data
    return Inbound(body=None, digest=hashlib.sha256(data).hexdigest(), message_id=message_id, size=len(data),
                   refusal=refusal, truncated=truncated, kept=kept.decode("utf-8", errors="replace"), **arrival)


class _TooDeep(Exception):
    pass


def canonical(value: Any, levels: int) -> Any:
    """JSON's number semantics (an integral number is an integer, whichever way it was written),
    for a value nested at most `levels` deep (else `_TooDeep`, before recursing any further)."""
    if isinstance(value, dict):
        if not levels:
            raise _TooDeep
        return {key: canonical(item, levels - 1) for key, item in value.items()}
    if isinstance(value, list):
        if not levels:
            raise _TooDeep
        return [canonical(item, levels - 1) for item in value]
    if type(value) is float and value.is_integer() and abs(value) < _EXACT:
        return int(value)
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
