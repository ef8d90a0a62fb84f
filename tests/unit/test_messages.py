"""Envelope and payload parsing: every malformed message gets `invalid` with a clear reason."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.commands import COMMANDS
from domain.envelope import parse_envelope
from domain.handlers import HANDLERS
from domain.reference import ProjectCode
from domain.rejections import Rejection
from service.pipeline import Refusal
from tests.portal import CODE, msg, register


def parse(body: Any):  # type: ignore[no-untyped-def]
    return parse_envelope(body, submitted_by="test")


def invalid(body: Any) -> str:
    with pytest.raises(Rejection) as caught:
        parse(body)
    assert caught.value.code == "invalid"
    return Refusal.of(caught.value).reason  # the reason kept and answered, in English


def test_a_registration_parses_into_typed_values() -> None:
    envelope = parse(register())
    command = envelope.command
    assert command.total_investment == Decimal("12000")
    assert command.planned_start == date(2021, 4, 1)
    assert envelope.audit.occurred_at.utcoffset() == timedelta(hours=8)
    assert envelope.audit.business_date == date(2021, 1, 10)
    assert envelope.audit.subject == CODE


def test_decimals_keep_their_digits() -> None:
    envelope = parse(msg("land.supplied", {"parcel": "P", "area_mu": 86.5, "method": "transfer"}))
    assert envelope.command.area_mu == Decimal("86.5")


def test_an_offsetless_time_is_city_time() -> None:
    envelope = parse({**register(), "occurred_at": "2021-01-10T23:30:00"})
    assert envelope.audit.occurred_at.astimezone(timezone.utc) == datetime(2021, 1, 10, 15, 30, tzinfo=timezone.utc)


def test_business_date_is_the_city_date() -> None:
    envelope = parse({**register(), "occurred_at": "2021-01-10T20:00:00+00:00"})
    assert envelope.audit.business_date == date(2021, 1, 11)


@pytest.mark.parametrize("mutate,fragment", [
    (lambda b: b.pop("message_id"), "message_id"),
    (lambda b: b.update(message_id="has space"), "message_id"),
    (lambda b: b.update(occurred_at="yesterday"), "occurred_at"),
    (lambda b: b.pop("actor"), "actor"),
    (lambda b: b.update(actor={"department": "mars", "user": "x"}), "unknown department"),
    (lambda b: b.update(project_code="2021-62-01"), "project_code"),
    (lambda b: b.update(extra=1), "unknown envelope field"),
    (lambda b: b.update(payload=[]), "payload"),
    (lambda b: b["payload"].pop("name"), "payload.name: required"),
    (lambda b: b["payload"].update(total_investment="lots"), "payload.total_investment"),
    (lambda b: b["payload"].update(total_investment=-1), "greater than 0"),
    (lambda b: b["payload"].update(total_investment=True), "must be a JSON number"),
    (lambda b: b["payload"].update(planned_start="2021/04/01"), "ISO date"),
    (lambda b: b["payload"].update(revenue_generating="yes"), "true or false"),
    (lambda b: b["payload"].update(district="110101"), "payload.district"),
    (lambda b: b["payload"].update(sector="Z"), "payload.sector"),
    (lambda b: b["payload"].update(colour="red"), "unknown payload field"),
    (lambda b: b["payload"].update(name="x" * 501), "longer than"),
    (lambda b: b["payload"].update(name="   "), "non-empty"),
    (lambda b: b.update(occurred_at="0001-01-01T00:00:00+09:00"), "between 1990 and 2100"),
    (lambda b: b["payload"].update(planned_start="9999-12-30"), "between 1990 and 2100"),
    (lambda b: b["payload"].update(total_investment=1e-7), "decimal places"),
    (lambda b: b["payload"].update(total_investment=0.1234567), "decimal places"),
    (lambda b: b["payload"].update(total_investment=123456789.1234567), "significant digits"),
    (lambda b: b["payload"].update(total_investment=1e300), "out of range"),
    (lambda b: b["payload"].update(total_investment=10**40), "out of range"),
    # Amounts are JSON numbers: no string passes, however number-like (issue 7: "0E-999999999999999999"
    # was accepted, and rendering it exhausted the memory).
    *[(lambda b, v=v: b["payload"].update(total_investment=v), "must be a JSON number")
      for v in ("5", "1_000", " 5 ", "٥", "0E-999999999999999999", "1e-999999", "NaN", "Infinity")],
    (lambda b: b.update(project_code="2021-620102-48-01-000123\n"), "project_code"),
    (lambda b: b.update(project_code="２０２１-620102-48-01-000123"), "project_code"),
    (lambda b: b.update(message_id="id\n"), "message_id"),
])
def test_malformed_envelopes_are_invalid(mutate: Any, fragment: str) -> None:
    body = register()
    body["payload"] = dict(body["payload"])
    mutate(body)
    assert fragment in invalid(body)


def test_a_non_object_is_invalid() -> None:
    assert "JSON object" in invalid([register()])


def test_messages_not_about_a_project_take_no_code() -> None:
    body = msg("quota.set", {"district": "620102", "year": 2021, "factor": "energy", "amount": 1})
    assert "not about a project" in invalid(body)


@pytest.mark.parametrize("payload,fragment", [
    ({"period": "2021-13", "completed": 1}, "payload.period"),
    ({"period": "2021-01", "completed": 1e13}, "out of range"),
    ({"period": "2021-01", "completed": "NaN"}, "JSON number"),
    ({"period": "2021-01", "completed": "0E-999999999999999999"}, "JSON number"),
])
def test_payload_bounds(payload: dict, fragment: str) -> None:
    assert fragment in invalid(msg("investment.reported", payload))


def test_every_type_has_a_command() -> None:
    assert COMMANDS and all(t == c.TYPE and c.SENDERS for t, c in COMMANDS.items())


def test_every_command_has_its_handler() -> None:
    # Without one, every message of the type would be kept as `invalid` (the code failed on it), not refused loudly.
    assert not [t for t, command in COMMANDS.items() if command not in HANDLERS]


def test_unknown_type() -> None:
    with pytest.raises(Rejection) as caught:
        parse(msg("project.renamed", {}))
    assert caught.value.code == "unknown_type"


@pytest.mark.parametrize("value", ["2020-620102-48-01-000123", "2021-620171-44-02-000001"])
def test_project_codes_parse_year_and_area(value: str) -> None:
    code = ProjectCode(value)
    assert code.year == int(value[:4]) and code.area == value[5:11]


@pytest.mark.parametrize("value", ["2020-620102-48-01-00012", "2020-62010-48-01-000123", "x" * 24, "0001-620102-48-01-000123"])
def test_malformed_project_codes(value: str) -> None:
    with pytest.raises(ValueError):
        ProjectCode(value)


@pytest.mark.parametrize("written,canonical", [
    (5, "5"), (5.0, "5"), (86.50, "86.5"), (1e2, "100"), (2.5e3, "2500"), (0.000001, "0.000001"),
    (0.0, "0"), (-0.0, "0"), (999999999999, "999999999999"), (123456789.123456, "123456789.123456"),
])
def test_amounts_are_stored_in_one_canonical_form(written: float, canonical: str) -> None:
    command = parse(msg("plan.set", {"year": 2021, "planned_investment": written})).command
    assert str(command.planned_investment) == canonical  # type: ignore[attr-defined]


def test_the_contract_document_lists_every_message_type_with_its_senders() -> None:
    contract = (Path(__file__).resolve().parents[2] / "docs" / "contract.md").read_text()
    for type_, command in COMMANDS.items():
        assert f"`{type_}`" in contract, f"docs/contract.md does not describe {type_}"
        for department in (d for d in command.SENDERS if not d.startswith("@")):
            assert f"`{department}`" in contract, f"docs/contract.md does not name {department}, a sender of {type_}"
