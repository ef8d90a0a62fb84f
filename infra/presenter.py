"""How a stored event looks in JSON: one presenter for the audit trail, the feed and the relay.

An event that cannot be decoded or rendered (stored by an older version, or damaged) is shown
with its raw stored data and a `render_error`, so one bad event can neither fail a page nor
stall a consumer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import CanMutateAggregate

from domain.audit import Audit
from domain.texts import Detail
from infra.catalogue import say, warning_json
from infra.parsing import MAX_DEPTH, nested_deeper_than

_HIDDEN = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "audit"})
_KINDS = {"Project": "project", "QuotaPool": "quota", "EmissionReduction": "reduction", "MessageReceipt": "message",
          "AuditCheckpoint": "checkpoint"}
#: Beyond this exponent a decimal is written in exponent form: its digits could fill the memory.
_PLAIN_EXPONENT = 40


@dataclass(frozen=True)
class StoredItem:
    """An event as the audit trail shows it, with its position in the store.

    `event` is None when the stored data could not be decoded; `topic` and `state` are what
    was stored, and `error` says what went wrong.
    """

    position: int
    event: CanMutateAggregate[UUID] | None
    topic: str = ""
    state: bytes = b""
    error: str | None = None


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        # Exact digits, as a JSON number: amounts are money and must not pass through float.
        if not obj.is_finite():
            raise TypeError(f"{obj} is not a number JSON can carry")
        plain = abs(obj.adjusted()) <= _PLAIN_EXPONENT and abs(obj.as_tuple().exponent) <= _PLAIN_EXPONENT  # type: ignore[arg-type]
        return orjson.Fragment(format(obj, "f") if plain else str(obj))
    raise TypeError(f"cannot render {type(obj).__name__}")


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


@lru_cache(maxsize=1024)  # a name per event class, said for every event of every history and feed page
def dotted_name(qualname: str) -> str:
    """`Project.LandSupplied` → `project.land_supplied`."""
    owner, _, name = qualname.partition(".")
    return f"{_KINDS.get(owner, owner.lower())}.{re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()}"


#: What of a kept message quotes its text: withheld from a reader who may not read it (`withheld`). A
#: reason's parameters quote it as the reason does (a field's value); its text code does not.
KEPT_TEXT = ("body", "reason", "detail_params", "body_hash", "body_sha256", "kafka_key", "raw")


def event_json(item: StoredItem, body_shown: bool = True) -> dict[str, Any]:
    """The event as one item of a project's history or the feed; never raises. Without `body_shown`,
    what quotes a kept message's text is withheld (see `withheld`)."""
    try:
        if item.event is None:
            raise ValueError(item.error or "not decoded")
        rendered = _event_json(item.position, item.event)
        dumps(rendered)  # what cannot be written must be caught here, not halfway through a page
    except Exception as error:  # noqa: BLE001 - any failure is shown, not raised
        rendered = unreadable_json(item, f"{type(error).__name__}: {str(error)[:300]}")
    if not body_shown:
        withheld(rendered, rendered["data"])
    return rendered


def withheld(entry: dict[str, Any], data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Set to null what quotes a kept message's text in `data` (the entry itself if not given), and
    name those fields in `entry["withheld"]`: the entry keeps its place in the list, so a reader
    paging on loses nothing but what it may not read."""
    fields = entry if data is None else data
    hidden = [name for name in KEPT_TEXT if fields.get(name) is not None]
    for name in hidden:
        fields[name] = None
    if hidden:
        entry["withheld"] = hidden
    return entry


def _event_json(position: int, event: Any) -> dict[str, Any]:
    audit: Audit | None = getattr(event, "audit", None)
    data = {k: v for k, v in vars(event).items() if k not in _HIDDEN}
    if "detail" in data and data.get("detail_code"):  # an alert change said by code: its English, as before
        data["detail"] = say(Detail(data["detail_code"], data.get("detail_params") or {}))
    name = dotted_name(type(event).__qualname__)
    return {
        "position": position,
        # An event caused by a portal message carries that message's type.
        "type": audit.message_type if audit else name,
        "event": name,
        "subject": audit.subject if audit else data.get("subject"),
        "data": data,
        "occurred_at": audit.occurred_at if audit else None,
        "recorded_at": event.timestamp,
        "actor": {"department": audit.department, "user": audit.user} if audit else None,
        "source": audit.source if audit else None,
        "message_id": audit.message_id if audit else data.get("message_id"),
        "submitted_by": audit.submitted_by if audit else data.get("submitted_by"),
        "warnings": [warning_json(w) for w in audit.warnings] if audit else [],
    }


def unreadable_json(item: StoredItem, error: str) -> dict[str, Any]:
    name = dotted_name(item.topic.rpartition(":")[2]) if item.topic else "unknown"
    return {
        "position": item.position, "type": name, "event": name, "subject": None,
        "data": {"raw": item.state.decode("utf-8", errors="replace")},
        "occurred_at": None, "recorded_at": None, "actor": None, "source": None, "message_id": None,
        "submitted_by": None, "warnings": [], "render_error": error,
    }


def original_body(text: str) -> Any:
    """A kept message body: the JSON it was, or the text it was when it was not JSON (or was
    nested too deep to be written again as JSON)."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return text if nested_deeper_than(body, MAX_DEPTH) else body


def rejection_json(item: StoredItem) -> dict[str, Any]:
    event: Any = item.event
    rendered = {
        "position": item.position,
        "message_id": event.message_id,
        "type": event.message_type,
        "code": event.code,
        "reason": event.reason,
        # What the reason says, for a reader in another language (null: kept before reasons had codes).
        "detail_code": event.detail_code,
        "detail_params": event.detail_params,
        "subject": event.subject,
        "received_at": event.timestamp,
        "submitted_by": event.submitted_by,
        "channel": event.channel,
        "body": original_body(event.body),
    }
    if event.body_length is not None:  # only the first KiBs of a message too large to keep
        rendered.update(body_truncated=True, body_length=event.body_length, body_sha256=event.body_sha256)
    return rendered
