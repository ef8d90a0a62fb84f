"""The JSON Schemas of the messages (`domain.schema`) and the parser agree: what one accepts, the other
accepts — for every message type, on the contract's examples and on messages changed near every
boundary the parser draws (blank and control characters, the amounts' places and digits, the calendar,
the date-time grammar, codes with blanks around them, nulls, whole numbers written with a point)."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from typing import Any

import jsonschema
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from domain.commands import COMMANDS
from domain.envelope import field_specs, parse_envelope
from domain.rejections import Rejection
from domain.schema import WHITESPACE, envelope_schema, message_schema
from infra.settings import Settings
from service.bootstrap import build_ledger
from tests.conftest import LOCAL
from tests.portal import AT, CODE, EXAMPLE_SENDERS, EXAMPLES, NEW_CODE, msg
from yaosu.demo import demo_messages

NOT_ABOUT_A_PROJECT = {t for t, c in COMMANDS.items() if not c.NEEDS_PROJECT}


def _integer(checker: Any, instance: Any) -> bool:
    """JSON Schema's integer: a number without a fraction, however written (`2021.0` too)."""
    return (isinstance(instance, int) and not isinstance(instance, bool)) or (
        isinstance(instance, Decimal) and instance == instance.to_integral_value())


#: Numbers read as decimals, as the schemas ask of a validator (`multipleOf` compared exactly).
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _integer))


def as_decimals(value: Any) -> Any:
    return json.loads(json.dumps(value), parse_float=Decimal)


VALIDATORS = {t: Validator(as_decimals(message_schema(c))) for t, c in COMMANDS.items()}
ENVELOPE = Validator(as_decimals(envelope_schema()))


def example(type_: str, n: int = 0) -> dict[str, Any]:
    payload, _ = EXAMPLES[type_]
    code = None if type_ in NOT_ABOUT_A_PROJECT else NEW_CODE if type_ == "project.registered" else CODE
    return msg(type_, copy.deepcopy(dict(payload)), code=code, dept=EXAMPLE_SENDERS[type_], at=AT, mid=f"schema-{n}")


def parsed(body: Any) -> Rejection | None:
    try:
        parse_envelope(body, submitted_by="test")
    except Rejection as refused:
        return refused
    return None


def test_the_schemas_are_schemas_of_2020_12() -> None:
    for schema in (envelope_schema(), *(message_schema(c) for c in COMMANDS.values())):
        jsonschema.Draft202012Validator.check_schema(as_decimals(schema))


def test_every_example_of_the_contract_is_valid_under_its_schema_and_the_envelope() -> None:
    for type_ in COMMANDS:
        body = as_decimals(example(type_))
        assert parsed(example(type_)) is None, type_
        assert not list(VALIDATORS[type_].iter_errors(body)), type_
        assert ENVELOPE.is_valid(body), type_


blanks = st.sampled_from([" ", "\t", "\n", "\u3000", "\u00a0", "\u2028", "\u0085", "\u200b", "\ufeff", ""])
controls = st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f", "\t", "\n", "\r", "\u202e"])
texts = st.one_of(
    st.text(max_size=12),
    st.builds(lambda a, b, c: a + b + c, blanks, st.sampled_from(["x", "甲", ""]), blanks),
    st.builds(lambda a, b: a + b, st.sampled_from(["理由", "ok"]), controls),
    st.sampled_from(["x" * 500, "x" * 501, "甲" * 500, " " * 3, "\t\n", "a\n"]),
)
digits = st.integers(min_value=0, max_value=10**16)
numbers = st.one_of(
    st.integers(min_value=-(10**13), max_value=10**13),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-2e12, max_value=2e12),
    st.builds(lambda n, places: float(Decimal(n).scaleb(-places)), digits, st.integers(min_value=0, max_value=9)),
    st.sampled_from([0, 0.0, -0.0, 1e-6, 1e-7, 0.1234567, 0.123456, 999999999999.5, 999999999999, 10**12,
                     1e12, 123456789.123456, 1234567890.12345, 1234567890.123456, 12345678901.1234, 2021.0]),
)
days = st.builds(lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}", st.sampled_from([1989, 1990, 1992, 2000, 2021, 2024,
                                                                             2100, 2101]),
                 st.integers(min_value=0, max_value=13), st.integers(min_value=0, max_value=32))
times = st.builds(lambda day, sep, clock, zone: f"{day}{sep}{clock}{zone}", days, st.sampled_from(["T", " ", "t"]),
                  st.sampled_from(["09:00", "09:00:00", "23:59:59.123456789", "24:00:00", "09", "09:00:00.",
                                   "09:60:00", "9:00:00", "09:00:00.1234567890"]),
                  st.sampled_from(["", "Z", "z", "+08:00", "-05:30", "+08", "+0800", "+24:00", "+23:59"]))
codes = st.one_of(st.sampled_from([CODE, NEW_CODE, CODE + "\n", " " + CODE, "1989" + CODE[4:], "2101" + CODE[4:],
                                   "2100" + CODE[4:], CODE.replace("-", "_"), CODE[:-1]]), texts)
anything = st.one_of(st.none(), st.booleans(), numbers, texts, days, times,
                     st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.none(), max_size=2))


def near(value: Any) -> st.SearchStrategy[Any]:
    """Values near what a field holds: around its own value, and of its own kind."""
    if isinstance(value, str):
        kinds = [st.builds(lambda a, b: a + value + b, blanks, blanks), st.just(value.upper()),
                 st.just(value + "x"), texts]
        if len(value) == 10 and value[4] == "-":
            kinds.append(days)
        return st.one_of(*kinds, anything)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return st.one_of(numbers, st.just(float(value)), anything)
    return anything


@st.composite
def changed(draw: st.DrawFn, type_: str) -> dict[str, Any]:
    """An example with up to three of its values changed near a boundary."""
    body = example(type_, draw(st.integers(min_value=0, max_value=99)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        where = draw(st.sampled_from(["payload", "envelope", "actor", "message_id", "occurred_at",
                                      "project_code", "item"]))
        if where == "message_id":
            body["message_id"] = draw(st.one_of(st.sampled_from(["m-1", "m-1\n", " m-1", "-m", "m" * 200,
                                                                 "m" * 201, "m:1/2@x.y", ""]), texts))
        elif where == "occurred_at":
            body["occurred_at"] = draw(st.one_of(times, days, anything))
        elif where == "project_code":
            body["project_code"] = draw(st.one_of(codes, st.none()))
        elif where == "actor" and isinstance(body.get("actor"), dict):
            key = draw(st.sampled_from(["department", "user", "extra"]))
            body["actor"][key] = draw(near(body["actor"].get(key, "x")))
        elif where == "envelope":
            body[draw(st.sampled_from(["source", "type", "payload", "unexpected"]))] = draw(anything)
        else:
            target = body.get("payload")
            if where == "item" and isinstance(target, dict):
                lists = [v for v in target.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
                target = draw(st.sampled_from(lists))[0] if lists else target
            if isinstance(target, dict):
                names = sorted(target) + [name for name, *_ in field_specs(COMMANDS[type_])] + ["unexpected"]
                name = draw(st.sampled_from(names))
                target[name] = draw(st.one_of(near(target.get(name, "x")), st.none()))
    return body


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_schema_accepts_what_the_parser_accepts_and_nothing_else(data: st.DataObject) -> None:
    type_ = data.draw(st.sampled_from(sorted(COMMANDS)))
    body = data.draw(changed(type_))
    text = json.dumps(body)  # what a portal sends; the parser reads the same JSON back
    refused = parsed(json.loads(text))
    instance = json.loads(text, parse_float=Decimal)
    schema_errors = [e.message for e in VALIDATORS[type_].iter_errors(instance)]
    assert (refused is None) == (not schema_errors), (body, refused and refused.args, schema_errors[:3])
    assert ENVELOPE.is_valid(instance) == (not schema_errors), body


def test_the_whitespace_a_text_may_be_padded_with_is_what_strip_takes_away() -> None:
    stripped = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    assert stripped == {chr(c) for c in range(0x110000) if re.fullmatch(f"[{WHITESPACE}]", chr(c))}


def test_the_schemas_are_served_as_the_domain_writes_them() -> None:
    settings = Settings(store="memory://")
    ledger = build_ledger(settings)
    with TestClient(create_app(ledger, settings), base_url=LOCAL) as client:
        index = client.get("/v1/schemas").json()
        assert set(index["types"]) == set(COMMANDS)
        for type_, path in [*index["types"].items(), ("envelope", index["envelope"])]:
            answer = client.get(path)
            assert answer.status_code == 200 and answer.headers["content-type"] == "application/schema+json"
            expected = envelope_schema() if type_ == "envelope" else message_schema(COMMANDS[type_])
            assert answer.json() == json.loads(json.dumps(expected))
        missing = client.get("/v1/schemas/land.stolen")
        assert missing.status_code == 404 and missing.json()["code"] == "unknown_type"
    ledger.close()


def test_every_message_of_the_demo_is_judged_alike_by_its_schema_and_the_parser() -> None:
    """The demo sends the mistakes real portals make among its messages: the schema refuses exactly the
    malformed ones, and every other is valid under its type's schema."""
    judged = {"valid": 0, "malformed": 0}
    for message in demo_messages(2021, projects=60, seed=7):
        instance = json.loads(json.dumps(message), parse_float=Decimal)
        refused = parsed(json.loads(json.dumps(message)))
        malformed = refused is not None and refused.args[0].startswith(("invalid.", "unknown_type."))
        validator = VALIDATORS.get(message.get("type"), ENVELOPE)
        assert validator.is_valid(instance) == (not malformed), (message, refused and refused.args)
        judged["malformed" if malformed else "valid"] += 1
    assert judged["valid"] > 1000 and judged["malformed"] >= 1, judged


def test_a_schema_s_description_is_its_command_s_docstring_never_the_signature_a_dataclass_writes() -> None:
    for type_, command in COMMANDS.items():
        description = message_schema(command)["description"]
        assert not description.startswith(f"{command.__name__}("), (type_, description)
        assert description == type_ or description == (command.__doc__ or "").strip().splitlines()[0]
