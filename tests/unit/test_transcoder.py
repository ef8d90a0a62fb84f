"""The event store's transcoder gives back what it was given, whatever the nesting."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.audit import Audit
from infra.transcoder import OrjsonTranscoder

TRANSCODER = OrjsonTranscoder()

zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=8))])
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-10**12, max_value=10**12),
    st.dates(), st.datetimes(timezones=zones),
    st.builds(Audit, st.text(max_size=4), st.just("funds.allocated"), st.datetimes(timezones=zones),
              st.just("portal"), st.just("finance"), st.text(max_size=4), st.just("token:finance"), st.text(max_size=4)))
# Keys a state could hold, the tag's own names among them: a dict that only looks tagged stays a dict.
keys = st.sampled_from(["_type_", "_data_", "amount", "day", "audit", "items", "x"])
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=24)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (`Decimal("1") == 1`, `date` is not `datetime`)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


@given(st.dictionaries(keys, values, max_size=6))
def test_every_state_comes_back_as_it_was_stored(state: dict[str, Any]) -> None:
    assert same(TRANSCODER.decode(TRANSCODER.encode(state)), state)


def test_the_types_json_lacks_come_back_as_themselves() -> None:
    state = {"amount": Decimal("1200.50"), "day": date(2021, 3, 1), "ids": [Decimal(7), date(2021, 3, 2)],
             "at": {"when": datetime(2021, 3, 1, 9, tzinfo=timezone(timedelta(hours=8)))},
             "_type_": "decimal"}  # a key named like the tag, beside others: not a tagged value
    assert same(TRANSCODER.decode(TRANSCODER.encode(state)), state)
