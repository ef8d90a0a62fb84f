"""Hostile input and careless callers over HTTP, on both stores: each finding of issue 7, kept closed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Iterator

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from fastapi.testclient import TestClient

from api import schemas
from api.app import create_app
from domain.audit import Audit
from domain.project import project_id
from domain.reference import CITY_TZ
from infra import presenter
from infra.settings import Settings
from service.inbound import KEPT_BYTES, MAX_DEPTH
from service.ledger import Ledger
from tests.conftest import LOCAL
from tests.portal import CODE, admitted, msg

ADMIN = {"Authorization": "Bearer dev-admin"}
SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}


@pytest.fixture
def client(ledger: Ledger, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(ledger, settings), base_url=LOCAL, raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, body: Any) -> list[dict[str, Any]]:
    response = client.post("/v1/messages", content=body if isinstance(body, bytes) else orjson.dumps(body), headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def nested_text(depth: int) -> str:
    """JSON text of a string inside `depth` arrays (built as text: JSON writers stop short of this)."""
    return "[" * depth + '"bottom"' + "]" * depth


def last_rejection(client: TestClient) -> dict[str, Any]:
    listed = client.get("/v1/rejections?limit=1000", headers=SUPERVISOR)
    assert listed.status_code == 200, listed.text
    schemas.RejectionsResponse.model_validate(listed.json())
    return listed.json()["rejections"][-1]  # type: ignore[no-any-return]


# --- 1. an amount that could never be shown again ------------------------------------------


def test_amounts_are_json_numbers_and_5_and_5_0_are_one_body(client: TestClient) -> None:
    post(client, admitted(CODE))
    (poisoned,) = post(client, msg("investment.reported", {"period": "2021-02", "completed": "0E-999999999999999999"}))
    assert poisoned["code"] == "invalid" and "JSON number" in poisoned["reason"]
    first = msg("investment.reported", {"period": "2021-02", "completed": 5}, mid="report-5")
    again = {**first, "payload": {"period": "2021-02", "completed": 5.0}}
    assert [r["status"] for r in post(client, [first, again])] == ["accepted", "duplicate"]
    history = client.get(f"/v1/projects/{CODE}/history", headers=SUPERVISOR).json()["events"]
    assert history[-1]["data"]["completed"] == 5


def test_an_event_stored_before_the_checks_is_shown_raw_not_failing_the_page(
        client: TestClient, ledger: Ledger) -> None:
    post(client, admitted(CODE))
    project = ledger.project(CODE)
    assert project is not None
    audit = Audit(message_id="legacy-1", message_type="investment.reported", occurred_at=datetime(2021, 2, 1, 9, tzinfo=CITY_TZ),
                  source="old-portal", department="statistics", user="u", submitted_by="admin:old", subject=CODE)
    project.report_investment("2021-01", Decimal("0E-999999999999999999"), audit)  # an old version let this in
    ledger.save(project)
    head = ledger.head()
    for path in (f"/v1/projects/{CODE}", f"/v1/projects/{CODE}/history", f"/v1/events?after={head - 1}"):
        answer = client.get(path, headers=SUPERVISOR)
        assert answer.status_code == 200, (path, answer.text)
    # An event whose class is gone (a bad deployment) is shown raw in the trail and the feed.
    ledger.recorder.insert_events([StoredEvent(
        originator_id=project_id(CODE), originator_version=project.version + 1,
        topic="domain.project:Project.Vanished", state=b'{"what": "an event of a removed class"}')])
    assert client.get(f"/v1/events?after={head - 1}", headers=SUPERVISOR).status_code == 200
    history = client.get(f"/v1/projects/{CODE}/history", headers=SUPERVISOR).json()
    schemas.HistoryResponse.model_validate(history)
    reported, vanished = history["events"][-2:]
    assert reported["type"] == "investment.reported" and "render_error" not in reported
    assert vanished["render_error"] and vanished["data"]["raw"] == '{"what": "an event of a removed class"}'
    # The relay publishes the same presentation, so it cannot stall on either.
    for item in ledger.feed(head - 1, 10).items:
        presenter.dumps(presenter.event_json(item))


# --- 2. nesting -----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH, 300, 990])
def test_deep_nesting_is_rejected_and_kept_as_the_json_received(client: TestClient, depth: int) -> None:
    envelope = msg("data.provided", {"kind": "k", "reference": "PLACE"}, dept="big_data")
    text = orjson.dumps(envelope).decode().replace('"PLACE"', nested_text(depth))
    (result,) = post(client, text.encode())
    assert result["status"] == "rejected" and result["code"] == "invalid"
    assert f"deeper than {MAX_DEPTH}" in result["reason"]
    # Deeper than JSON writers go, the body is kept as the text that was received, never a repr.
    assert last_rejection(client)["body"] == text


def test_nesting_deeper_than_the_parser_takes_is_a_clear_400(client: TestClient) -> None:
    response = client.post("/v1/messages", content=b"[" * 5000 + b"]" * 5000, headers=ADMIN)
    assert response.status_code == 400 and response.json()["code"] == "malformed_json"


# --- 3. sizes -------------------------------------------------------------------------------


def test_a_large_envelope_is_kept_by_its_first_kib_length_and_hash(client: TestClient) -> None:
    body = msg("data.provided", {"kind": "k", "reference": "x" * 300_000}, dept="big_data", mid="too-big-1")
    (result,) = post(client, body)
    assert result["code"] == "invalid" and "262144" in result["reason"] and result["message_id"] == "too-big-1"
    kept = last_rejection(client)
    raw = orjson.dumps(body)
    assert kept["body_truncated"] is True and kept["body_length"] == len(raw)
    assert len(kept["body"].encode()) <= KEPT_BYTES and raw.decode().startswith(kept["body"][:1000])
    assert [r["status"] for r in post(client, body)] == ["duplicate"]  # resending it stores nothing more


def test_a_body_over_the_limit_is_refused_while_it_is_read(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
        yield b"["
        for _ in range(9 * 1024):
            yield b" " * 1024
        yield b"]"

    response = client.post("/v1/messages", content=chunks(), headers=ADMIN)
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    assert response.headers["connection"] == "close"


# --- 4. who may register which code (v1.1) --------------------------------------------------


def test_a_district_portal_cannot_register_another_districts_code(client: TestClient) -> None:
    theirs = "2021-620103-48-01-000777"
    portal = {"Authorization": "Bearer dev-district-620102"}
    body = {**admitted(theirs)[0], "actor": {"department": "district:620102", "user": "u"}}
    body["payload"] = {**body["payload"], "district": "620102"}
    (result,) = client.post("/v1/messages", json=body, headers=portal).json()["results"]
    assert result["code"] == "forbidden"
    (mismatch,) = post(client, {**body, "actor": {"department": "development_reform", "user": "u"},
                                "message_id": "mismatch-1"})
    assert mismatch["code"] == "invalid" and "620103" in mismatch["reason"]
    own = {"Authorization": "Bearer dev-district-620103"}
    mine = {**body, "actor": {"department": "district:620103", "user": "u"}, "message_id": "theirs-1",
            "payload": {**body["payload"], "district": "620103"}}
    (accepted,) = client.post("/v1/messages", json=mine, headers=own).json()["results"]
    assert accepted["status"] == "accepted"  # the district was not locked out of its own code


# --- 5. bounded parameters ------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    f"/v1/events?after={2**63}", f"/v1/rejections?after={2**63}", "/v1/events?after=-1",
    f"/v1/projects/{CODE}?as_of=9999-12-31", f"/v1/projects/{CODE}?as_of=0001-01-01",
    "/v1/events?limit=0", "/v1/events?limit=1001",
])
def test_out_of_range_parameters_are_400(client: TestClient, path: str) -> None:
    answer = client.get(path, headers=SUPERVISOR)
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_request", answer.text


# --- 10. edges ------------------------------------------------------------------------------


def test_a_trailing_slash_is_not_redirected_with_the_callers_host(client: TestClient) -> None:
    answer = client.get("/v1/events/", headers={**SUPERVISOR, "Host": "localhost:8000"}, follow_redirects=False)
    assert answer.status_code == 404 and "location" not in answer.headers
    # Another name is not served at all (issue 19, item 9).
    answer = client.get("/v1/events/", headers={**SUPERVISOR, "Host": "evil.example"}, follow_redirects=False)
    assert answer.status_code == 400 and answer.json()["code"] == "host_not_allowed"


def test_every_answer_says_nosniff_and_a_failure_closes_the_connection(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert client.get("/healthz").headers["x-content-type-options"] == "nosniff"
    assert client.get("/v1/events", headers=SUPERVISOR).headers["x-content-type-options"] == "nosniff"

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Ledger, "feed", broken)
    failed = client.get("/v1/events", headers=SUPERVISOR)
    assert failed.status_code == 500 and failed.json()["code"] == "internal_error"
    assert failed.headers["connection"] == "close" and failed.headers["x-content-type-options"] == "nosniff"


def test_the_docs_load_nothing_from_elsewhere(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs-files/swagger-ui-bundle.js" in page.text
    assert "https://" not in page.text and "http://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/docs-files/{asset}").status_code == 200


def test_operations_need_no_token_and_say_so(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/healthz", "/readyz", "/metrics"):
        assert not spec["paths"][path]["get"].get("security")
        assert client.get(path).status_code == 200
    assert spec["paths"]["/v1/events"]["get"]["security"]
    assert spec["paths"]["/v1/projects/{code}"]["get"]["parameters"][0]["schema"]["pattern"]
