"""The envelope (消息信封): `parse_envelope` turns a JSON body into an `Envelope` with a typed command.

It raises `Rejection('invalid.…' | 'unknown_type.…', ...)` for anything that does not fit the contract:
a small set of text codes, each with the field's path (`field`) and what was wrong with it.
One generic parser reads every command from its type hints and field metadata (`domain.commands`),
so the contract lives in one place.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, Union

from domain import reference
from domain.audit import Audit
from domain.commands import COMMANDS, Command
from domain.reference import ProjectCode
from domain.rejections import Rejection

MAX_TEXT: Final = 500
MAX_PLACES: Final = 6
#: JSON numbers are exchanged as IEEE-754 doubles (RFC 8259, section 6): beyond 15 significant
#: digits a sender's number may already have been rounded on its way here.
MAX_DIGITS: Final = 15
AMOUNT_LIMIT: Final = Decimal("1e12")
#: The most items a list in a payload may hold (the shares of an allocation: one per district, and some).
MAX_ITEMS: Final = 100


@dataclass(frozen=True)
class Envelope:
    audit: Audit
    project_code: str | None
    command: Command


ENVELOPE_KEYS: Final = frozenset(
    {"message_id", "type", "occurred_at", "source", "actor", "project_code", "payload"}
)
MESSAGE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}")
#: Control characters (C0, DEL, C1): no text field holds them (contract v1.2), except tab and newline
#: in free text. They stop or garble every reader downstream: PostgreSQL's text refuses NUL, a log line
#: or a CSV row breaks at a carriage return, a terminal obeys an escape.
CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_IN_FREE_TEXT: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

#: The grammar of a date and of a date-time (contract v1.3), written once for the parser and the JSON
#: Schemas (`domain.schema`): portable regular expressions (ECMA-262 and Python read them alike), the
#: calendar included, so a schema validator needs no `format` support. A date is `YYYY-MM-DD`; a
#: date-time is RFC 3339's with seconds optional (Java writes `09:00+08:00`) and the offset optional
#: (then it is the city's own time). Years from `reference.FIRST_YEAR` to `LAST_YEAR` (1990-2100).
YEAR_PATTERN: Final = "(?:199[0-9]|20[0-9][0-9]|2100)"
_MONTH_DAY: Final = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
                     "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_LEAP_DAY: Final = "(?:199[26]|20(?:[02468][048]|[13579][26]))-02-29"
DATE_PATTERN: Final = f"(?:{YEAR_PATTERN}-{_MONTH_DAY}|{_LEAP_DAY})"
DATETIME_PATTERN: Final = (f"{DATE_PATTERN}T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{{1,9}})?)?"
                           "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?")
_DATE: Final = re.compile(DATE_PATTERN)
_DATETIME: Final = re.compile(DATETIME_PATTERN)


def shown(text: str) -> str:
    """Text a sender sent, safe to quote in a reason: each control character written as an escape."""
    return CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def message_id_of(body: Any) -> str | None:
    """The body's message_id if it is well formed, else None (used before full parsing)."""
    if isinstance(body, dict):
        value = body.get("message_id")
        if isinstance(value, str) and MESSAGE_ID.fullmatch(value):
            return value
    return None


def parse_envelope(body: Any, *, submitted_by: str) -> Envelope:
    if not isinstance(body, dict):
        raise Rejection("invalid.not_an_object")
    unknown = sorted(set(body) - ENVELOPE_KEYS)
    if unknown:
        raise Rejection("invalid.unknown_fields", field="envelope", names=[shown(name) for name in unknown])
    message_id = message_id_of(body)
    if message_id is None:
        raise Rejection("invalid.message_id", field="message_id")
    message_type = body.get("type")
    if not isinstance(message_type, str):
        raise Rejection("invalid.required_string", field="type")
    command_class = COMMANDS.get(message_type)
    if command_class is None:
        raise Rejection("unknown_type.unknown", type=message_type)
    occurred_at = _datetime("occurred_at", body.get("occurred_at"))
    source = _text("source", body.get("source"))
    actor = body.get("actor")
    if not isinstance(actor, dict):
        raise Rejection("invalid.actor", field="actor")
    department = _text("actor.department", actor.get("department"))
    if not reference.is_department(department):
        raise Rejection("invalid.unknown_department", field="actor.department", value=department)
    user = _text("actor.user", actor.get("user"))
    extra = sorted(set(actor) - {"department", "user"})
    if extra:
        raise Rejection("invalid.unknown_fields", field="actor", names=[shown(name) for name in extra])
    project_code: str | None = None
    if command_class.NEEDS_PROJECT:
        raw_code = body.get("project_code")
        if not isinstance(raw_code, str):
            raise Rejection("invalid.project_code_required", field="project_code")
        if not reference.is_project_code(raw_code):
            raise Rejection("invalid.not_a_project_code", field="project_code", value=raw_code)
        if not reference.FIRST_YEAR <= int(raw_code[:4]) <= reference.LAST_YEAR:
            raise Rejection("invalid.implausible_year", field="project_code", value=raw_code)
        project_code = ProjectCode(raw_code).value
    elif body.get("project_code") is not None:
        raise Rejection("invalid.not_about_a_project", field="project_code", type=message_type)
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise Rejection("invalid.required_object", field="payload")
    command = parse_command(command_class, payload)
    subject = project_code or subject_of(command)
    audit = Audit(
        message_id=message_id,
        message_type=message_type,
        occurred_at=occurred_at,
        source=source,
        department=department,
        user=user,
        submitted_by=submitted_by,
        subject=subject,
    )
    return Envelope(audit=audit, project_code=project_code, command=command)


def subject_of(command: Command) -> str:
    """What a message not about a project is about (its audit's subject): a reduction, a batch approval
    of land, an allocation decision, else the district it names (a quota)."""
    for name in ("reduction_id", "approval_id", "allocation_id"):
        value = getattr(command, name, None)
        if isinstance(value, str):
            return value
    return str(getattr(command, "district"))


@functools.cache
def field_specs(record_class: type) -> tuple[tuple[str, Any, bool, Any], ...]:
    """(name, type, may be absent, metadata) of each field of a command (or of an item of one of its
    lists): read from the type hints once."""
    hints = typing.get_type_hints(record_class)
    specs = []
    for spec in dataclasses.fields(record_class):
        kind, optional = _unwrap_optional(hints[spec.name])
        specs.append((spec.name, kind, optional or spec.default is not dataclasses.MISSING, spec.metadata))
    return tuple(specs)


def parse_command(command_class: type[Command], payload: dict[str, Any]) -> Command:
    return _parse_record(command_class, payload, "payload")  # type: ignore[no-any-return]


def _parse_record(record_class: type, raw: dict[str, Any], path: str) -> Any:
    """An object of the payload (the payload itself, an item of a list) as its dataclass, every field checked."""
    fields = field_specs(record_class)
    unknown = sorted(set(raw) - {name for name, *_ in fields})
    if unknown:
        raise Rejection("invalid.unknown_fields", field=path, names=[shown(name) for name in unknown])
    values: dict[str, Any] = {}
    for name, kind, may_be_absent, meta in fields:
        value = raw.get(name)
        if value is None:
            if may_be_absent:
                continue
            raise Rejection("invalid.field_missing", field=f"{path}.{name}")
        values[name] = _check(f"{path}.{name}", _coerce(f"{path}.{name}", kind, value, meta), meta)
    return record_class(**values)


def _items(path: str, item_class: type, raw: Any) -> tuple[Any, ...]:
    """A list of objects (the shares of an allocation): at least one, at most `MAX_ITEMS`, each checked
    like a payload, its errors named by their place (`payload.shares[2].amount`)."""
    if not isinstance(raw, list):
        raise Rejection("invalid.not_a_list", field=path)
    if not raw:
        raise Rejection("invalid.empty_list", field=path)
    if len(raw) > MAX_ITEMS:
        raise Rejection("invalid.too_many_items", field=path, max=MAX_ITEMS, count=len(raw))
    parsed = []
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            raise Rejection("invalid.item_not_an_object", field=f"{path}[{n}]")
        parsed.append(_parse_record(item_class, item, f"{path}[{n}]"))
    return tuple(parsed)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _coerce(path: str, kind: Any, raw: Any, meta: Any) -> Any:
    if kind is str:
        return _text(path, raw, free=bool(meta.get("free_text")))
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        raise Rejection("invalid.not_a_boolean", field=path)
    if kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, float) and raw.is_integer():  # `2021.0` is the number 2021, as JSON Schema says
            return int(raw)
        raise Rejection("invalid.not_an_integer", field=path)
    if kind is Decimal:
        return _decimal(path, raw)
    if kind is date:
        return _date(path, raw)
    if typing.get_origin(kind) is tuple and dataclasses.is_dataclass(typing.get_args(kind)[0]):
        return _items(path, typing.get_args(kind)[0], raw)
    raise TypeError(f"no parser for {kind!r}")  # a programming error, not bad input


def _check(path: str, value: Any, meta: Any) -> Any:
    if "choices" in meta and value not in meta["choices"]:
        raise Rejection("invalid.not_a_choice", field=path, value=value, choices=list(meta["choices"]))
    if meta.get("positive") and value <= 0:
        raise Rejection("invalid.not_positive", field=path)
    if meta.get("non_negative") and value < 0:
        raise Rejection("invalid.negative", field=path)
    if "min" in meta and not meta["min"] <= value <= meta["max"]:
        raise Rejection("invalid.out_of_bounds", field=path, min=meta["min"], max=meta["max"])
    if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
        raise Rejection("invalid.pattern", field=path, value=value, pattern=meta["pattern"])
    if meta.get("department") and not reference.is_department(value):
        raise Rejection("invalid.unknown_department", field=path, value=value)
    return value


def _text(path: str, raw: Any, *, free: bool = False) -> str:
    """A string field: non-empty, bounded, without control characters (in free text, tab and newline
    may stay)."""
    if not isinstance(raw, str) or not raw.strip():
        raise Rejection("invalid.empty_text", field=path)
    if len(raw) > MAX_TEXT:
        raise Rejection("invalid.too_long", field=path, max=MAX_TEXT)
    control = (CONTROL_IN_FREE_TEXT if free else CONTROL).search(raw)
    if control is not None:
        raise Rejection("invalid.control_character_in_free_text" if free else "invalid.control_character", field=path,
                        character=f"U+{ord(control.group()):04X}", offset=control.start())
    return raw.strip()


def _decimal(path: str, raw: Any) -> Decimal:
    """An amount: a JSON number (never a string), in its one canonical form (`5.0` is `5`)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise Rejection("invalid.not_a_number", field=path)
    if isinstance(raw, int):
        if abs(raw) >= AMOUNT_LIMIT:
            raise Rejection("invalid.out_of_range", field=path, value=str(raw), limit=int(AMOUNT_LIMIT))
        return Decimal(raw)
    if not math.isfinite(raw) or abs(raw) >= AMOUNT_LIMIT:
        raise Rejection("invalid.out_of_range", field=path, value=repr(raw), limit=int(AMOUNT_LIMIT))
    value = canonical_decimal(Decimal(repr(raw)))  # the shortest text that reads back as this double
    sign, digits, exponent = value.as_tuple()
    if len(digits) > MAX_DIGITS:
        raise Rejection("invalid.too_many_digits", field=path, value=repr(raw), max=MAX_DIGITS)
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise Rejection("invalid.too_many_places", field=path, value=repr(raw), max=MAX_PLACES)
    return value


def canonical_decimal(value: Decimal) -> Decimal:
    """The one form of a finite decimal: no trailing zeros, no exponent, no negative zero."""
    if value == 0:
        return Decimal(0)
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


def _date(path: str, raw: Any) -> date:
    """A date as the contract writes it (`DATE_PATTERN`); a date of the calendar outside 1990-2100 is
    said to be out of range."""
    if isinstance(raw, str) and _DATE.fullmatch(raw):
        return date.fromisoformat(raw)
    if isinstance(raw, str) and _LOOSE_DATE.fullmatch(raw):
        try:
            date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            raise Rejection("invalid.year_out_of_range", field=path, value=raw, first=reference.FIRST_YEAR,
                            last=reference.LAST_YEAR)
    raise Rejection("invalid.not_a_date", field=path)


def _datetime(path: str, raw: Any) -> datetime:
    """A date-time as the contract writes it (`DATETIME_PATTERN`); without an offset, the city's own time."""
    if isinstance(raw, str) and _DATETIME.fullmatch(raw):
        value = datetime.fromisoformat(raw)  # beyond microseconds, the fraction is cut (the store keeps µs)
        return value if value.tzinfo else value.replace(tzinfo=reference.CITY_TZ)
    if isinstance(raw, str) and _LOOSE_DATETIME.fullmatch(raw):
        try:
            datetime.fromisoformat(raw)
        except ValueError:
            pass
        else:  # a moment of the calendar, in a year the contract does not take
            raise Rejection("invalid.year_out_of_range", field=path, value=raw, first=reference.FIRST_YEAR,
                            last=reference.LAST_YEAR)
    raise Rejection("invalid.not_a_datetime", field=path)


_LOOSE_DATE: Final = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LOOSE_DATETIME: Final = re.compile(DATETIME_PATTERN.replace(DATE_PATTERN, "[0-9]{4}-[0-9]{2}-[0-9]{2}"))
