"""Any text a caller sends, through the whole path, on both stores: parsed (a control character is
refused with `invalid`, a lone surrogate is not JSON), stored, applied by every read model, listed,
exported and shown by the console — and no read model ever stops on it.

Hypothesis draws text from every Unicode category: controls (C0, DEL, C1), surrogates (escaped in
the JSON, the only way they can travel), noncharacters, private use, bidirectional marks, combining
marks, astral planes.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.app import create_app
from domain import commands
from domain.envelope import CONTROL, CONTROL_IN_FREE_TEXT, MAX_TEXT
from infra.settings import Settings
from projections.catalog import Catalog
from projections.read import ReadModels
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.console import sign_in
from tests.portal import REGISTRATION

ADMIN = {"Authorization": "Bearer dev-admin", "Content-Type": "application/json"}
SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}
_codes = itertools.count(1)
#: Where the text goes: (message type, field), a field of the envelope or of a payload.
FIELDS = [("project.registered", "name"), ("project.registered", "owner"), ("project.registered", "actor.user"),
          ("project.registered", "source"), ("issue.escalated", "title"), ("issue.escalated", "issue_id")]


@dataclasses.dataclass
class Path:
    client: TestClient
    runner: Runner
    catalog: Catalog


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from tests.conftest import LOCAL, fresh_store

    pg = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    settings_ = Settings(store=fresh_store(request.param, tmp_path_factory.mktemp("unicode"), pg))
    ledger = build_ledger(settings_)
    runner = Runner(ledger, settings_)
    reads = ReadModels(settings_)
    try:
        with TestClient(create_app(ledger, settings_, reads), base_url=LOCAL) as client:
            runner.run_until_caught_up()
            sign_in(client)
            yield Path(client, runner, Catalog(runner.db))
    finally:
        reads.close()
        runner.close()
        ledger.close()


def refused(text: str, command: type[Any] | None, field: str) -> bool:
    """Whether the parser must refuse this text in this field (the contract's rule, restated)."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text) or not text.strip() or len(text) > MAX_TEXT:
        return True
    free = command is not None and any(f.name == field and f.metadata.get("free_text")
                                       for f in dataclasses.fields(command))
    return (CONTROL_IN_FREE_TEXT if free else CONTROL).search(text) is not None


def envelope(type_: str, code: str, payload: dict[str, Any], n: int, **overrides: Any) -> dict[str, Any]:
    return {"message_id": f"unicode-{code}-{n}", "type": type_, "occurred_at": "2021-03-01T09:00:00+08:00",
            "source": overrides.get("source", "unicode-test"), "project_code": code,
            "actor": {"department": "development_reform", "user": overrides.get("user", "zhang.san")},
            "payload": payload}


def post(client: TestClient, body: Any) -> Any:
    # ensure_ascii: every character travels as an escape, lone surrogates included (orjson cannot write them).
    return client.post("/v1/messages", content=json.dumps(body, ensure_ascii=True).encode(), headers=ADMIN)


def texts() -> st.SearchStrategy[str]:
    return st.text(st.characters(codec=None, categories=None), min_size=1, max_size=24)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts(), where=st.sampled_from(FIELDS))
@example(text="城关\x00项目", where=("project.registered", "name"))
@example(text="a\x00b", where=("project.registered", "actor.user"))
@example(text="\ud800", where=("project.registered", "owner"))
@example(text="\u202eevil\u202c", where=("project.registered", "name"))
@example(text="\ufffe\uffff\U0010fffe", where=("issue.escalated", "title"))
@example(text="第一行\n第二行\t", where=("issue.escalated", "title"))
@example(text="\x85\x9f", where=("project.registered", "source"))
@example(text="𠀀\U000e0001\u0301", where=("project.registered", "name"))
def test_any_text_is_taken_or_refused_and_no_reader_stops(path: Path, text: str, where: tuple[str, str]) -> None:
    client, message_type, field = path.client, *where
    code = f"2021-620102-48-01-{next(_codes):06d}"
    payload = {**REGISTRATION, "name": f"项目{code}"}
    overrides = {}
    if message_type == "project.registered":
        if field in ("actor.user", "source"):
            overrides[field.removeprefix("actor.")] = text
        else:
            payload[field] = text
    bodies = [envelope("project.registered", code, payload, 1, **overrides),
              envelope("project.admitted", code, {"library": "municipal"}, 2, **overrides)]
    if message_type == "issue.escalated":
        issue = {"issue_id": "ISSUE-1", "title": "用地协调", "level": "district", "assigned_to": "natural_resources",
                 "due_date": "2021-06-30", field: text}
        bodies.append(envelope("issue.escalated", code, issue, 3))
    answer = post(client, bodies)
    command = commands.COMMANDS[message_type]
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert answer.status_code == 400 and answer.json()["code"] == "malformed_json"  # not JSON: nothing kept
    else:
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        carrier = results[-1] if message_type == "issue.escalated" else results[0]
        if refused(text, None if field in ("actor.user", "source") else command, field):
            assert carrier["status"] == "rejected" and carrier["code"] == "invalid", carrier
        else:
            assert [r["status"] for r in results] == ["accepted"] * len(bodies), results

    path.runner.run_until_caught_up()
    assert path.catalog.halts() == []
    head = client.get("/readyz").json()
    assert head["status"] == "ready"
    for live in path.runner.generations.values():
        assert live.halt is None and live.position == head["head"], live.name

    for url in ("/v1/libraries/municipal", "/v1/libraries/municipal?format=csv", "/v1/libraries/municipal?format=xlsx",
                "/v1/stages", "/v1/alerts?as_of=2021-12-31", "/v1/rejections?limit=5", "/v1/events?limit=5",
                "/v1/audit?limit=5", "/v1/audit?format=xlsx&limit=20", f"/v1/projects/{code}/history"):
        got = client.get(url, headers=SUPERVISOR)
        assert got.status_code in (200, 404), (url, got.status_code, got.text[:300])
    # In a query, as a browser sends it: UTF-8, percent-encoded (a lone surrogate as the bytes it would be).
    actor = quote(text.encode("utf-8", "surrogatepass"), safe="")
    searched = client.get(f"/v1/audit?actor={actor}", headers=SUPERVISOR)
    assert searched.status_code in (200, 400), searched.text[:300]
    for page in ("/console", "/console/libraries/municipal", f"/console/audit?actor={actor}", "/console/rejections",
                 f"/console/projects/{code}", "/console/health"):
        got = client.get(page)
        assert got.status_code in (200, 404), (page, got.status_code)
        assert 'id="halted"' not in got.text
