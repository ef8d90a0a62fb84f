"""The event store's transcoder: orjson, with tagged values for the types JSON lacks.

Decimals, dates, date-times and the `Audit` record are written as
`{"_type_": name, "_data_": ...}` so they come back as themselves. (orjson writes a UUID as its
text itself, which comes back as text: no event holds one.) Only event state passes
through here; bodies of rejected messages are stored as text, so a portal can never smuggle
a tag in.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

import orjson
from eventsourcing.persistence import Transcoder

from domain.audit import Audit

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS

_ENCODERS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    Decimal: ("decimal", str),
    datetime: ("datetime", datetime.isoformat),
    date: ("date", date.isoformat),
    # Warnings as `PolicyWarning.stored_form`, and only where there are some: older events had none.
    Audit: ("audit", lambda a: {k: getattr(a, k) if k != "warnings" else [w.stored_form() for w in a.warnings]
                                for k in a.__dataclass_fields__ if k != "warnings" or a.warnings}),
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "decimal": Decimal,
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "audit": lambda d: Audit(**d),
}


def _default(obj: Any) -> Any:
    try:
        name, encode = _ENCODERS[type(obj)]
    except KeyError:
        raise TypeError(f"cannot store a {type(obj).__name__} in an event") from None
    return {"_type_": name, "_data_": encode(obj)}


def _revive(value: Any) -> Any:
    # Hot path of every replay: recurse into containers only, and revive dicts in place.
    if type(value) is dict:
        tag = value.get("_type_")
        if type(tag) is str and tag in _DECODERS and len(value) == 2 and "_data_" in value:
            return _DECODERS[tag](_revive(value["_data_"]))
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                value[key] = _revive(item)
        return value
    if type(value) is list:
        return [_revive(item) for item in value]
    return value


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)

    def decode(self, data: bytes) -> Any:
        return _revive(orjson.loads(data))


_TIMESTAMP = b'{"timestamp":{"_type_":"datetime","_data_":"'


def recorded_at(state: bytes) -> datetime | None:
    """When a stored event was recorded, read from its state without decoding the rest (the library
    writes the timestamp first)."""
    if state.startswith(_TIMESTAMP):
        start = len(_TIMESTAMP)
        return datetime.fromisoformat(state[start:state.index(b'"', start)].decode())
    value = orjson.loads(state).get("timestamp")
    return datetime.fromisoformat(value["_data_"]) if isinstance(value, dict) and "_data_" in value else None
