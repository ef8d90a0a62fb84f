"""JSON Schemas (2020-12) of the envelope and of each message type (消息模式), for a portal to validate
a message before it sends it.

They are written from the same declarations the parser (`domain.envelope`) reads — the commands'
fields, types and metadata, the envelope's keys, the text rules, the amounts' bounds, the date grammar
— so that what one accepts the other accepts (a property test holds them to it). They state the
syntax of a message; the rules a message must also follow (who may send it, what must come before it)
are the contract's, answered with their own codes when the message arrives.

Patterns are portable regular expressions (ECMA-262, which JSON Schema names, and Python read them
alike); amounts are bounded with `multipleOf`, which a validator must compare as decimals (ajv:
`multipleOfPrecision`; Python's `jsonschema`: numbers read with `parse_float=Decimal`).
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import date
from decimal import Decimal
from typing import Any, Final

from domain import reference
from domain.commands import COMMANDS, Command
from domain.envelope import (
    DATE_PATTERN,
    DATETIME_PATTERN,
    ENVELOPE_KEYS,
    MAX_ITEMS,
    MAX_TEXT,
    MESSAGE_ID,
    YEAR_PATTERN,
    field_specs,
)

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
#: The schemas' identifiers (served at `/v1/schemas/{type}` and `/v1/schemas/envelope`).
BASE: Final = "urn:yaosu:message:"
#: The characters Python's `str.strip()` takes away (`str.isspace`), which the parser strips from a text.
WHITESPACE: Final = ("\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029"
                     "\\u202f\\u205f\\u3000")
#: A text holds no control character (C0, DEL, C1); free text may hold tab and newline.
CONTROL: Final = "[\\u0000-\\u001f\\u007f-\\u009f]"
CONTROL_IN_FREE_TEXT: Final = "[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]"
#: The end of the text (Python's `$` also matches before a last newline; ECMA's does not).
END: Final = "$(?!\\n)"
#: Amounts: below 10^12 in size, at most 6 decimal places and 15 significant digits. Each band of size
#: allows the places the 15 digits leave: (lower bound, upper bound, smallest step).
AMOUNT_BANDS: Final = ((0, 10**9, "1e-6"), (10**9, 10**10, "1e-5"), (10**10, 10**11, "1e-4"),
                       (10**11, 10**12, "1e-3"))


def _literal(text: str) -> str:
    """A value as a regular expression matching itself alone (in ECMA's unicode mode too, which refuses
    escapes of characters that are not special)."""
    return "".join(f"\\{c}" if c in "\\^$.|?*+()[]{}/" else c for c in text)


def text(free: bool = False) -> dict[str, Any]:
    """A string the parser takes as text: not blank, at most `MAX_TEXT` characters, no control character."""
    return {"type": "string", "maxLength": MAX_TEXT, "pattern": f"[^{WHITESPACE}]",
            "not": {"pattern": CONTROL_IN_FREE_TEXT if free else CONTROL}}


def padded(body: str, description: str | None = None) -> dict[str, Any]:
    """A text whose stripped value matches `body` (the parser strips a text before it judges it)."""
    found = {**text(), "pattern": f"^[{WHITESPACE}]*(?:{body})[{WHITESPACE}]*{END}"}
    return {**found, "description": description} if description else found


def one_of(values: typing.Iterable[str], description: str | None = None) -> dict[str, Any]:
    """One of the codes (`enum`, for the tools that generate code from a schema), or one of them with
    blanks around it, which the parser strips."""
    codes = list(values)
    found: dict[str, Any] = {"anyOf": [{"enum": codes}, padded("|".join(_literal(v) for v in codes))]}
    return {**found, "description": description} if description else found


def departments() -> dict[str, Any]:
    return one_of([*reference.DEPARTMENTS, *(reference.district_portal(d) for d in reference.DISTRICTS)],
                  "a department code, or district:<area code> for a district's portal")


def amount(meta: typing.Mapping[str, Any]) -> dict[str, Any]:
    """A JSON number as `domain.envelope._decimal` takes it, with its field's sign."""
    bands: list[dict[str, Any]] = []
    for low, high, step in AMOUNT_BANDS:
        bands.append({"exclusiveMinimum": -high, "exclusiveMaximum": high, "multipleOf": float(step)} if low == 0
                     else {"minimum": low, "exclusiveMaximum": high, "multipleOf": float(step)})
        if low:
            bands.append({"exclusiveMinimum": -high, "maximum": -low, "multipleOf": float(step)})
    found: dict[str, Any] = {"type": "number", "anyOf": bands}
    if meta.get("positive"):
        found["exclusiveMinimum"] = 0
    if meta.get("non_negative"):
        found["minimum"] = 0
    return found


def _field(kind: Any, meta: typing.Mapping[str, Any]) -> dict[str, Any]:
    if kind is str:
        if "choices" in meta:
            return one_of(meta["choices"])
        if "pattern" in meta:
            return padded(meta["pattern"])
        if meta.get("department"):
            return departments()
        return text(free=bool(meta.get("free_text")))
    if kind is bool:
        return {"type": "boolean"}
    if kind is int:
        found: dict[str, Any] = {"type": "integer"}
        if "min" in meta:
            found.update(minimum=meta["min"], maximum=meta["max"])
        return found
    if kind is Decimal:
        return amount(meta)
    if kind is date:
        return {"type": "string", "pattern": f"^{DATE_PATTERN}{END}", "description": "YYYY-MM-DD"}
    if typing.get_origin(kind) is tuple and dataclasses.is_dataclass(typing.get_args(kind)[0]):
        return {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": record(typing.get_args(kind)[0])}
    raise TypeError(f"no schema for {kind!r}")  # a programming error: the parser has none either


def record(record_class: type) -> dict[str, Any]:
    """The payload of a command (or an item of one of its lists): each field as the parser reads it; a
    field that may be absent may also be null."""
    properties, required = {}, []
    for name, kind, may_be_absent, meta in field_specs(record_class):
        found = _field(kind, meta)
        if may_be_absent:
            properties[name] = {"anyOf": [{"type": "null"}, found]}
        else:
            properties[name], required = found, [*required, name]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _summary(command: type[Command]) -> str:
    """The first line of the command's docstring; its type when it has none of its own (a dataclass's
    generated one, `SupplyLand(parcel: 'str', ...)`, is its signature, not a description)."""
    doc = (command.__doc__ or "").strip()
    return command.TYPE if not doc or doc.startswith(f"{command.__name__}(") else doc.splitlines()[0]


def message_schema(command: type[Command]) -> dict[str, Any]:
    """The schema of one message type's envelope."""
    properties: dict[str, Any] = {
        "message_id": {"type": "string", "pattern": f"^{MESSAGE_ID.pattern}{END}",
                       "description": "the idempotency key: a message sent again with it is a duplicate"},
        "type": {"const": command.TYPE},
        "occurred_at": {"type": "string", "pattern": f"^{DATETIME_PATTERN}{END}",
                        "description": "business time, RFC 3339 (seconds and offset may be left out: then "
                                       "the city's own time)"},
        "source": text(),
        "actor": {"type": "object", "properties": {"department": departments(), "user": text()},
                  "required": ["department", "user"], "additionalProperties": False},
        "project_code": ({"type": "string", "minLength": 24, "maxLength": 24,
                          "pattern": f"^{YEAR_PATTERN}-[0-9]{{6}}-[0-9]{{2}}-[0-9]{{2}}-[0-9]{{6}}{END}",
                          "description": "the national project code YYYY-AAAAAA-NN-NN-NNNNNN"}
                         if command.NEEDS_PROJECT else {"type": "null", "description": "not about a project"}),
        "payload": record(command),
    }
    assert set(properties) == ENVELOPE_KEYS, "the schema names every key of the envelope"
    required = ["message_id", "type", "occurred_at", "source", "actor", "payload"]
    return {"$schema": DIALECT, "$id": f"{BASE}{command.TYPE}", "title": command.TYPE,
            "description": _summary(command),
            "type": "object", "properties": properties,
            "required": [*required, "project_code"] if command.NEEDS_PROJECT else required,
            "additionalProperties": False}


def envelope_schema() -> dict[str, Any]:
    """Any message: one of the message types' schemas, chosen by `type`."""
    return {"$schema": DIALECT, "$id": "urn:yaosu:envelope", "title": "envelope",
            "description": "a portal's message: one of the message types, by its `type`",
            "$defs": {t: {k: v for k, v in message_schema(c).items() if k not in ("$schema", "$id")}
                      for t, c in sorted(COMMANDS.items())},
            "oneOf": [{"$ref": f"#/$defs/{t}"} for t in sorted(COMMANDS)]}
