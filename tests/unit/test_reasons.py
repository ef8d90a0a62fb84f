"""Every rejection says a text code and its parameters; the one catalogue words it (issue 20, item 2).

The domain builds no sentence: a `Rejection` carries `Detail(code, params)`, and `infra.catalogue.said`
words it in English (the stored `reason`, exactly as before) and in Chinese (the console, the exports).
Each text code the domain and the service layer can say is found here by reading their source, so a new
one without its two wordings fails.
"""

from __future__ import annotations

import ast
import re
import string
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.envelope import parse_envelope
from domain.parking import ParkedMessage
from domain.receipt import MessageReceipt
from domain.rejections import REJECTION_CODES, Rejection
from infra.catalogue import KINDS, said, text_codes, translations
from infra.presenter import StoredItem, rejection_json
from service.inbound import inbound
from service.ledger import Ledger
from tests.conftest import submit
from tests.portal import CODE, msg, register
from tests.unit.test_parking import EARLY, from_kafka, retry

ROOT = Path(__file__).resolve().parents[2]
#: A text code a rejection says: `<rejection code>.<what>`.
TEXT_CODE = re.compile(rf"(?:{'|'.join(REJECTION_CODES)})\.[a-z_]+")
CJK = re.compile(r"[\u4e00-\u9fff]")


def spoken_codes() -> set[str]:
    """Every rejection text code written in domain/ and service/ (a `Rejection(...)`, a `Detail(...)`, a table)."""
    found = set()
    for path in [*(ROOT / "domain").glob("*.py"), *(ROOT / "service").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and TEXT_CODE.fullmatch(node.value):
                found.add(node.value)
    return found


def wording(code: str, lang: str) -> str:
    return translations(lang).gettext(code)


def placeholders(text: str) -> dict[str, str]:
    """Each placeholder's parameter, with the kind of code it is shown as ('' when none)."""
    return {re.split(r"[.\[]", name)[0]: spec if spec in KINDS else ""
            for _, name, spec, _ in string.Formatter().parse(text) if name}


def test_every_text_code_of_a_rejection_is_worded_in_both_languages_with_the_same_parameters() -> None:
    codes = spoken_codes()
    assert len(codes) > 60  # the walk finds them: the parser's, the rules', the service's
    assert codes <= text_codes("en") and codes <= text_codes("zh"), codes - (text_codes("en") & text_codes("zh"))
    for code in codes:
        assert set(placeholders(wording(code, "en"))) == set(placeholders(wording(code, "zh"))), code
        assert CJK.search(wording(code, "zh")), f"{code}: the Chinese wording is not Chinese"
    worded = {c for c in text_codes("en") | text_codes("zh") if TEXT_CODE.fullmatch(c)}
    assert worded <= codes, f"worded but never said: {worded - codes}"


def sample(name: str, kind: str) -> Any:
    """A representative value of a parameter: a code of its kind, a list where one is joined, else text."""
    if kind:
        return next(m for m in translations("zh")._catalog if isinstance(m, str) and m.startswith(f"{kind}."))[len(kind) + 1:]
    return {"names": ["colour", "size"], "choices": ["a", "b"], "missing": ["financial", "legal"], "offset": 3,
            "max": 15, "min": 1, "year": 2021, "amount": 5, "tonnes": 5, "remaining": 2, "quota": 10}.get(name, "x-1")


def test_every_text_renders_in_both_languages_with_representative_parameters() -> None:
    for code in spoken_codes():
        params = {name: sample(name, kind) for lang in ("en", "zh")
                  for name, kind in placeholders(wording(code, lang)).items()}
        english, chinese = said(code, params, "en"), said(code, params, "zh")
        assert english != code and chinese != code and "{" not in english + chinese, code
        assert CJK.search(chinese) and not CJK.search(english.replace("赴外招商必须从在库项目中进行筛选", "")), code


def test_no_rejection_builds_a_sentence() -> None:
    """A `Rejection(...)` names its text code and gives parameters, never a reason of its own."""
    for path in [*(ROOT / "domain").glob("*.py"), *(ROOT / "service").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Rejection":
                assert len(node.args) == 1 and not isinstance(node.args[0], ast.JoinedStr), \
                    f"{path.name}:{node.lineno}: a Rejection says a text code and its parameters only"


# --- the envelope parser, on any body --------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
FIELDS = ("message_id", "type", "occurred_at", "source", "actor", "project_code", "payload")


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    """A random JSON value, or a registration with one field of it (or of its payload or actor) replaced."""
    if draw(st.booleans()):
        return draw(JSON)
    body = register()
    body["payload"] = dict(body["payload"])
    body["actor"] = dict(body["actor"])
    where = draw(st.sampled_from([body, body["payload"], body["actor"]]))
    key = draw(st.sampled_from([*where, *FIELDS, "extra\x1b"]))
    if draw(st.booleans()):
        where[key] = draw(JSON | st.text() | st.sampled_from(["2021-13-01", "1e400", "9999-01-01", "SO2", 10**15]))
    else:
        where.pop(key, None)
    return body


def said_in_both(rejection: Rejection) -> None:
    detail = rejection.detail
    assert detail.code in text_codes("en") and detail.code in text_codes("zh"), detail.code
    orjson.dumps(dict(detail.params))  # language-neutral: JSON values only
    chinese = said(detail.code, detail.params, "zh")
    assert CJK.search(chinese), chinese  # never an ASCII-only sentence on a Chinese page
    assert said(detail.code, detail.params, "en") != detail.code


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_whatever_the_parser_refuses_it_says_with_a_code_of_the_catalogue(body: Any) -> None:
    try:
        parse_envelope(body, submitted_by="test")
    except Rejection as rejection:
        said_in_both(rejection)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40) | st.sampled_from([b"[" * 100 + b"]" * 100, b'{"a": 1.00000000000000001}', b"{x"]))
def test_whatever_arrives_refused_is_said_with_a_code_of_the_catalogue(raw: bytes) -> None:
    arrived = inbound(raw)
    if arrived.refusal is not None:
        said_in_both(Rejection(arrived.refusal.code, **arrived.refusal.params))
        assert arrived.problem == said(arrived.refusal.code, arrived.refusal.params)


# --- kept: the receipt, the parked message -----------------------------------------------------------


def test_a_rejection_is_kept_with_its_reason_its_text_code_and_its_parameters(memory_ledger: Ledger) -> None:
    body = msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data")
    (result,) = submit(memory_ledger, body)
    assert (result.code, result.detail_code, result.detail_params) == (
        "unknown_project", "unknown_project.not_registered", {"project": CODE})
    assert result.reason == f"no project is registered as {CODE}"  # the English reason, as before
    (kept,) = memory_ledger.rejections().items
    shown = rejection_json(kept)
    assert (shown["reason"], shown["detail_code"], shown["detail_params"]) == (
        result.reason, "unknown_project.not_registered", {"project": CODE})
    assert said(shown["detail_code"], shown["detail_params"], "zh") == f"项目未登记：{CODE}"
    (again,) = submit(memory_ledger, body)  # a resend is answered as the original was
    assert (again.status, again.detail_code, again.detail_params) == (
        "duplicate", "unknown_project.not_registered", {"project": CODE})


def test_a_rejection_kept_before_reasons_had_codes_reads_with_null_ones(memory_ledger: Ledger) -> None:
    submit(memory_ledger, {"not": "an envelope"})
    (kept,) = memory_ledger.rejections().items
    state = memory_ledger.mapper.transcoder.decode(kept.state)
    assert state.pop("detail_code") == "invalid.unknown_fields"
    state.pop("detail_params")  # as an older version wrote it
    old = memory_ledger.decode(StoredEvent(originator_id=kept.event.originator_id,  # type: ignore[union-attr]
                                           originator_version=1, topic=kept.topic,
                                           state=memory_ledger.mapper.transcoder.encode(state)))
    assert isinstance(old, MessageReceipt.Rejected)
    shown = rejection_json(StoredItem(kept.position, old))
    assert (shown["reason"], shown["detail_code"], shown["detail_params"]) == (
        "unknown envelope field(s): not", None, None)


def test_a_message_parked_before_reasons_had_codes_reads_with_null_ones(memory_ledger: Ledger) -> None:
    """A `Parked` event of version 1 (stored without `detail_code` and `detail_params`) is upcast: the
    parked read model and the feed read it with null codes instead of halting on a missing attribute."""
    from_kafka(memory_ledger, EARLY)
    stored = next(n for n in memory_ledger.recorder.select_notifications(start=1, limit=100)
                  if n.topic.endswith("ParkedMessage.Parked"))
    state = memory_ledger.mapper.transcoder.decode(stored.state)
    assert state.pop("detail_code") == "unknown_project.not_registered"
    state.pop("detail_params")
    state.pop("class_version", None)  # as version 1 wrote it
    old = memory_ledger.decode(StoredEvent(originator_id=stored.originator_id, originator_version=1,
                                           topic=stored.topic, state=memory_ledger.mapper.transcoder.encode(state)))
    assert isinstance(old, ParkedMessage.Parked)
    assert (old.reason, old.detail_code, old.detail_params) == (f"no project is registered as {CODE}", None, None)


def test_a_parked_message_keeps_what_it_waits_for_and_is_rejected_for_it_when_its_window_passes(
        memory_ledger: Ledger) -> None:
    (parked,) = from_kafka(memory_ledger, EARLY)
    assert (parked.status, parked.detail_code, parked.detail_params) == (
        "parked", "unknown_project.not_registered", {"project": CODE})
    (expired,) = retry(memory_ledger, later=timedelta(hours=1))
    assert (expired.status, expired.code, expired.reason, expired.detail_code, expired.detail_params) == (
        "rejected", "unknown_project", f"no project is registered as {CODE}", "unknown_project.not_registered",
        {"project": CODE})
    (kept,) = memory_ledger.rejections().items
    assert (kept.event.detail_code, kept.event.detail_params) == (  # type: ignore[union-attr]
        "unknown_project.not_registered", {"project": CODE})
