"""Two classes of input the parser refuses whole, and what it says: text with control characters
(contract v1.2) and numbers a double would round (more than 15 significant digits).

The number check reads the JSON text itself: orjson hands the parser doubles, whose rounding
cannot be seen afterwards, so every way in that carries bytes (HTTP, Kafka, `yaosu load`) is
checked before any rule runs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.envelope import CONTROL, parse_envelope, shown
from domain.rejections import Rejection
from service.inbound import inbound
from service.pipeline import Refusal
from tests.portal import REGISTRATION, msg, register


def as_bytes(body: Any, amount: str) -> bytes:
    """The body's JSON text with `total_investment` written exactly as `amount`."""
    return orjson.dumps(body).replace(b'"total_investment":12000', b'"total_investment":' + amount.encode())


@given(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("999999999999"), places=6, allow_nan=False,
                   allow_infinity=False))
def test_a_number_is_refused_exactly_when_a_double_would_round_it(value: Decimal) -> None:
    written = format(value, "f")
    digits = len(value.normalize().as_tuple().digits)
    arrived = inbound(as_bytes(register(), written))
    if digits > 15:
        assert arrived.problem is not None and "more than 15 significant digits" in arrived.problem
        assert arrived.message_id is not None  # kept under its id, rejected as invalid
    else:
        assert arrived.problem is None
        parsed = parse_envelope(arrived.body, submitted_by="test")
        assert parsed.command.total_investment == value.normalize()  # type: ignore[attr-defined]


@pytest.mark.parametrize("written", ["12345678.901234567", "0.12345678901234567", "1234567890123456.5",
                                     "1.0000000000000001"])
def test_seventeen_significant_digits_are_refused_not_rounded(written: str) -> None:
    assert "significant digits" in (inbound(as_bytes(register(), written)).problem or "")


def test_a_long_run_of_digits_inside_a_string_is_only_text() -> None:
    body = register()
    body["payload"]["owner"] = "兰州 12345678901234567890"
    assert inbound(orjson.dumps(body)).problem is None


@given(st.text(st.characters(codec=None, categories=None), min_size=1, max_size=30),
       st.sampled_from(["name", "owner", "user", "source"]))
def test_a_text_field_holds_no_control_character(text: str, field: str) -> None:
    body = msg("project.registered", {**REGISTRATION, "name": "项目"}, at="2021-01-10T09:00:00+08:00")
    if field in ("name", "owner"):
        body["payload"][field] = text
    elif field == "user":
        body["actor"]["user"] = text
    else:
        body["source"] = text
    try:
        parse_envelope(body, submitted_by="test")
    except Rejection as rejection:
        assert rejection.code == "invalid"
        assert CONTROL.search(Refusal.of(rejection).reason) is None  # what it says can be shown and stored anywhere
        refused = True
    else:
        refused = False
    assert refused == bool(CONTROL.search(text) or not text.strip() or len(text) > 500)


def test_what_a_reason_quotes_of_a_sender_is_escaped() -> None:
    body = register()
    body["payload"]["co\x00lour\x1b[31m"] = 1
    with pytest.raises(Rejection) as refused:
        parse_envelope(body, submitted_by="test")
    assert Refusal.of(refused.value).reason == "unknown payload field(s): co\\x00lour\\x1b[31m"
    assert shown("a\tb\x85") == "a\\x09b\\x85"
