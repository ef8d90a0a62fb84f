"""The HTTP API over real stores: answers, problems, auth, schemas, and bad input losing nothing."""

from __future__ import annotations

from typing import Any, Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from api import schemas
from api.app import create_app
from domain.commands import COMMANDS
from infra.settings import Settings
from service.bootstrap import build_ledger
from tests.conftest import LOCAL, submit
from tests.portal import CODE, admitted, land_quota, msg

ADMIN = {"Authorization": "Bearer dev-admin"}
SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}
NR_PORTAL = {"Authorization": "Bearer dev-natural_resources"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    ledger = build_ledger(settings)
    with TestClient(create_app(ledger, settings), base_url=LOCAL) as test_client:
        yield test_client
    ledger.close()


def post(client: TestClient, body: Any, headers: dict[str, str] = ADMIN) -> Any:
    response = client.post("/v1/messages", content=orjson.dumps(body), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def snapshot(client: TestClient) -> tuple[Any, Any]:
    history = client.get(f"/v1/projects/{CODE}/history", headers=SUPERVISOR).json()
    feed = client.get("/v1/events?limit=1000", headers=SUPERVISOR).json()
    return history, [e for e in feed["events"] if e["event"] != "message.rejected"]


def test_submit_then_read_state_and_history(client: TestClient) -> None:
    land = msg("land.supplied", {"parcel": "LZ-2021-017", "area_mu": 86.5, "method": "transfer"},
               dept="natural_resources", mid="nr-portal-2021-000042")
    results = post(client, [*admitted(CODE, "annual"), land_quota(100), land, land])  # v1.2: land within a quota
    assert [r["status"] for r in results] == ["accepted"] * 5 + ["duplicate"]
    assert results[4]["position"] > results[3]["position"]
    state = client.get(f"/v1/projects/{CODE}", headers=SUPERVISOR).json()
    schemas.ProjectState.model_validate(state)
    assert state["factors"]["land"][0]["quantity"] == 86.5 and state["factor_totals"] == {"land": 86.5}
    assert [lib["library"] for lib in state["libraries"]] == ["annual", "municipal"]
    history = client.get(f"/v1/projects/{CODE}/history", headers=SUPERVISOR).json()
    schemas.HistoryResponse.model_validate(history)
    last = history["events"][-1]
    assert last["type"] == "land.supplied" and last["event"] == "project.land_supplied"
    # the land event comes before its draw on the land quota and its receipt
    assert last["message_id"] == "nr-portal-2021-000042" and last["position"] == results[4]["position"] - 2
    assert last["actor"] == {"department": "natural_resources", "user": "zhang.san"}
    assert last["occurred_at"] == "2021-03-01T09:00:00+08:00" and last["recorded_at"] and last["source"]
    assert last["data"] == {"parcel": "LZ-2021-017", "area_mu": 86.5, "method": "transfer", "exception": None,
                            "approval_id": None, "start_by": None}  # v1.2: the approval drawn on, the agreed start


def test_as_of(client: TestClient) -> None:
    post(client, admitted(CODE))
    assert client.get(f"/v1/projects/{CODE}?as_of=2021-01-11", headers=SUPERVISOR).json()["libraries"] == []
    assert client.get(f"/v1/projects/{CODE}?as_of=2021-01-12", headers=SUPERVISOR).json()["libraries"]
    gone = client.get(f"/v1/projects/{CODE}?as_of=2020-12-31", headers=SUPERVISOR)
    assert gone.status_code == 404 and gone.json()["code"] == "unknown_project"
    bad = client.get(f"/v1/projects/{CODE}?as_of=tomorrow", headers=SUPERVISOR)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


def test_rejections_are_listed(client: TestClient) -> None:
    results = post(client, [msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data"), 42])
    assert [r["code"] for r in results] == ["unknown_project", "invalid"]
    listed = client.get("/v1/rejections", headers=SUPERVISOR).json()
    schemas.RejectionsResponse.model_validate(listed)
    assert [(r["code"], r["body"] if r["code"] == "invalid" else r["type"]) for r in listed["rejections"]] == [
        ("unknown_project", "data.provided"), ("invalid", 42)]


@pytest.mark.parametrize("raw,status,code", [
    (b"{not json", 400, "malformed_json"),
    (b"", 400, "malformed_json"),
    (b"\"just a string\"", 400, "not_an_envelope"),
    (b"17", 400, "not_an_envelope"),
    (orjson.dumps([{}] * 1001), 413, "batch_too_large"),
])
def test_bad_bodies_are_problems_and_change_nothing(client: TestClient, raw: bytes, status: int, code: str) -> None:
    post(client, admitted(CODE))
    before = snapshot(client)
    response = client.post("/v1/messages", content=raw, headers=ADMIN)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    schemas.Problem.model_validate(problem)
    assert problem["code"] == code and problem["detail"]
    assert snapshot(client) == before
    assert client.get("/healthz").json() == {"status": "ok"}  # still serving


@pytest.mark.parametrize("body,code", [
    ({"message_id": "x-1", "type": "land.supplied"}, "invalid"),
    (msg("project.renamed", {"name": "n"}), "unknown_type"),
    (msg("land.supplied", {"parcel": "P", "area_mu": "lots", "method": "transfer"}, dept="natural_resources"), "invalid"),
    (msg("land.supplied", {"parcel": ["P"], "area_mu": 1, "method": "transfer"}, dept="natural_resources"), "invalid"),
    (msg("construction.started", {"date": 20210401}), "invalid"),
])
def test_bad_envelopes_are_rejected_kept_and_change_nothing(client: TestClient, body: Any, code: str) -> None:
    post(client, admitted(CODE))
    before = snapshot(client)
    (result,) = post(client, body)
    assert result["status"] == "rejected" and result["code"] == code and result["reason"]
    assert snapshot(client) == before
    assert client.get("/v1/rejections", headers=SUPERVISOR).json()["rejections"][-1]["code"] == code


def test_tokens(client: TestClient) -> None:
    assert client.get("/v1/rejections").status_code == 401
    assert client.get("/v1/rejections", headers={"Authorization": "Bearer nope"}).json()["code"] == "unauthenticated"
    assert client.post("/v1/messages", content=b"[]").status_code == 401
    (result,) = post(client, msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data"), NR_PORTAL)
    assert result["code"] == "forbidden"
    # A supervisor's token submits nothing: refused whole, nothing kept (issue 19, item 7).
    refused = client.post("/v1/messages", json=msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data"),
                          headers=SUPERVISOR)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    # A portal reads what a supervisor reads (v1.1), but of the rejections only those of what it sent.
    own = client.get("/v1/rejections", headers=NR_PORTAL)
    assert own.status_code == 200
    assert [r["submitted_by"] for r in own.json()["rejections"]] == ["portal:natural_resources-portal"]
    assert len(client.get("/v1/rejections", headers=SUPERVISOR).json()["rejections"]) == 1
    assert client.get(f"/v1/projects/{CODE}/history", headers=NR_PORTAL).status_code == 404  # read, not forbidden


def test_unknown_and_malformed_project_codes(client: TestClient) -> None:
    missing = client.get(f"/v1/projects/{CODE}", headers=SUPERVISOR)
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_project"
    assert client.get(f"/v1/projects/{CODE}/history", headers=SUPERVISOR).status_code == 404
    malformed = client.get("/v1/projects/not-a-code", headers=SUPERVISOR)
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid_project_code"
    assert client.get("/v1/nothing-here", headers=SUPERVISOR).json()["code"] == "not_found"


def test_the_global_feed_pages_in_store_order(client: TestClient) -> None:
    post(client, admitted(CODE, "annual"))
    first = client.get("/v1/events?limit=2", headers=SUPERVISOR).json()
    schemas.FeedResponse.model_validate(first)
    rest = client.get(f"/v1/events?after={first['next_after']}&limit=100", headers=SUPERVISOR).json()
    positions = [e["position"] for e in first["events"] + rest["events"]]
    assert positions == sorted(positions) and positions[-1] == first["head"]


def test_openapi_describes_every_message_type(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["components"]["schemas"]["MessagesBody"]
    assert body["anyOf"] == [{"type": "object"}, {"type": "array", "maxItems": 1000}]
    assert len(spec["components"]["schemas"]["Envelope"]["oneOf"]) == len(COMMANDS)
    land = spec["components"]["schemas"]["LandSuppliedMessage"]
    assert set(land["required"]) >= {"message_id", "type", "occurred_at", "actor", "payload", "project_code"}
    payload = spec["components"]["schemas"]["SupplyLandPayload"]
    assert payload["properties"]["method"]["enum"] == ["allocation", "transfer", "standard_land"]
    assert spec["paths"]["/v1/messages"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    names = [n for n in spec["components"]["schemas"] if n.endswith("Message")]
    assert len(names) == len(COMMANDS)


def test_a_batch_past_its_budget_is_503_contended_and_stores_nothing(settings: Settings) -> None:
    """Another process keeps changing what the batch read (here once, with no budget left to retry):
    nothing is stored, and the caller is told to send the same body again."""
    ledger, other = build_ledger(settings), build_ledger(settings)
    try:
        assert {r.status for r in submit(ledger, *admitted(CODE))} == {"accepted"}  # kept in its memory
        data = {"kind": "geology", "reference": "GS-1"}
        assert submit(other, msg("data.provided", data, dept="big_data"))[0].status == "accepted"
        ledger.submit_budget = 0.0
        with TestClient(create_app(ledger, settings), base_url=LOCAL) as client:
            head = ledger.head()
            body = msg("data.provided", {**data, "reference": "GS-2"}, dept="big_data")
            answer = client.post("/v1/messages", json=body, headers=ADMIN)
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
            assert answer.json()["code"] == "contended" and ledger.head() == head
            ledger.submit_budget = 10.0
            assert client.post("/v1/messages", json=body, headers=ADMIN).json()["results"][0]["status"] == "accepted"
    finally:
        other.close()
        ledger.close()
