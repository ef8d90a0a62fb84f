"""The v1.2 messages through `POST /v1/messages`, each from its department's own portal token, on SQLite and
PostgreSQL: accepted with their warnings, or refused with their code and reason and kept (read back through
`GET /v1/rejections`); and the published OpenAPI of their payloads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.allocation import allocation_id_of
from infra.settings import Settings
from projections.read import ReadModels
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import LOCAL
from tests.portal import CODE, admitted, land_quota, msg
from tests.unit.test_v12_messages import (
    adopt,
    amend,
    approve,
    assign,
    at,
    close,
    disburse,
    funds,
    issue,
    land,
    reclaim,
    respond,
)

SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}


def token(department: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev-{department.replace(':', '-')}"}


@pytest.fixture
def client(ledger: Ledger, settings: Settings) -> Iterator[TestClient]:
    reads = ReadModels(settings)
    try:
        with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as test:
            for body in [*admitted(CODE, "annual"), land_quota(5000)]:
                assert post(test, body)["status"] == "accepted"
            yield test
    finally:
        reads.close()


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    """One message, with the token of the department it names: its result."""
    response = client.post("/v1/messages", json=body, headers=token(body["actor"]["department"]))
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    return dict(result)


def outcome(client: TestClient, body: dict[str, Any]) -> tuple[str, str | None, list[str]]:
    result = post(client, body)
    return (result["status"] if result["status"] != "rejected" else result["code"], result.get("detail_code"),
            [w["code"] for w in result.get("warnings", [])])


def test_the_new_messages_are_accepted_with_their_warnings(client: TestClient) -> None:
    script = [
        (funds(100), []), (disburse(40), []),
        (approve(area=30), []), (land(20, approval_id="LA-1", start_by="2021-06-30"), []),
        (issue(), []), (assign(), []), (respond(), []), (reclaim("grant-land-1"), []),
        (close("reclaimed"), []),
        (amend(when=at("2021-06-02"), planned_start="2021-09-01"), ["postponed_after_alert"]),
        (issue("I-10"), []), (assign("DB-2", when=at("2021-06-02"), due="2021-06-30"), []),
        (close("waived", case_id="DB-2", when=at("2021-06-03")), ["supervision_waived"]),
        (adopt(), []),
    ]
    for body, warnings in script:
        assert outcome(client, body) == ("accepted", None, warnings), body["type"]
    history = client.get(f"/v1/projects/{CODE}/history", headers=SUPERVISOR).json()["events"]
    types = {e["type"] for e in history}
    assert {"funds.disbursed", "project.amended", "supervision.assigned", "supervision.responded",
            "supervision.closed", "land.supplied", "factor.reclaimed"} <= types
    waived = next(e for e in history if e["type"] == "supervision.closed" and e["warnings"])
    assert waived["warnings"][0]["detail_code"] == "supervision_waived.waived"


#: Each refusal a v1.2 rule answers with, after the accepted setup of `refusals` below.
REFUSALS: list[tuple[dict[str, Any], str, str | None]] = [
    (disburse(101), "invalid", "invalid.beyond_allocated"),
    (disburse(1, day="2021-02-01"), "invalid", "invalid.before_the_grant"),
    (disburse(1, grant="nowhere"), "unknown_reference", "unknown_reference.no_grant"),
    (disburse(1, dept="natural_resources"), "forbidden", "forbidden.type"),
    (approve(), "invalid_state", "invalid_state.approval_recorded"),
    (approve("LA-2", dept="development_reform"), "forbidden", "forbidden.type"),
    (land(31, mid="r-land-1", approval_id="LA-1"), "quota_exceeded", "quota_exceeded.approval_unsupplied"),
    (land(1, mid="r-land-2", approval_id="LA-9"), "invalid", "invalid.approval_elsewhere"),
    (land(1, mid="r-land-3", approval_id="LA-404"), "unknown_reference", "unknown_reference.no_approval"),
    (amend(), "invalid", "invalid.nothing_amended"),
    (assign("DB-1"), "invalid_state", "invalid_state.case_number_taken"),
    (assign("DB-2", rule="lagging"), "not_alerted", "not_alerted.rule"),
    (assign("DB-2"), "invalid_state", "invalid_state.case_open"),
    (assign("DB-2", rule="idle"), "invalid", "invalid.not_a_choice"),
    (assign("DB-2", dept="finance"), "forbidden", "forbidden.type"),
    (respond(dept="finance"), "forbidden", "forbidden.type"),
    (respond(case_id="DB-404"), "unknown_reference", "unknown_reference.no_case"),
    (respond(expected_by="2021-03-01"), "invalid", "invalid.before_the_case"),
    (close("rectified"), "not_cleared", "not_cleared.still_alerted"),
    (close("reclaimed"), "not_cleared", "not_cleared.nothing_reclaimed"),
    (close("waived", dept="development_reform"), "forbidden", "forbidden.type"),
    (adopt(total=99), "invalid", "invalid.shares_sum"),
    (adopt([{"district": "620102", "amount": 100}, {"district": "620103", "amount": -1}], total=99), "invalid",
     "invalid.negative"),
    (adopt(factor="energy"), "forbidden", "forbidden.type"),
]


def test_each_refusal_is_answered_with_its_code_and_kept(client: TestClient) -> None:
    setup = [funds(100), approve(area=30), approve("LA-9", district="620103"), issue(), assign(),
             land(5, mid="grant-land-0"), close("waived", case_id="DB-1", when=at("2021-03-03")),
             assign("DB-3", when=at("2021-03-04"))]
    for body in setup:
        assert post(client, body)["status"] == "accepted", body["type"]
    for n, (body, code, text) in enumerate(REFUSALS):
        if body["payload"].get("case_id") == "DB-1" and body["type"] != "supervision.assigned":
            body["payload"]["case_id"] = "DB-3"  # the open case
        body["message_id"] = f"refused-{n}"
        assert outcome(client, body)[:2] == (code, text), (n, body["type"], post(client, body))
    listed = client.get("/v1/rejections?limit=100", headers=SUPERVISOR).json()["rejections"]
    kept = {r["message_id"]: r for r in listed}
    for n, (body, code, text) in enumerate(REFUSALS):
        assert (kept[f"refused-{n}"]["code"], kept[f"refused-{n}"]["detail_code"]) == (code, text), n
        assert kept[f"refused-{n}"]["reason"]


def test_a_rejection_of_the_shares_names_the_item(client: TestClient) -> None:
    body = adopt([{"district": "620102", "amount": 60}, {"district": "620103", "amount": 40, "note": "多余"}])
    result = post(client, body)
    assert (result["code"], result["detail_code"], result["detail_params"]["field"]) == (
        "invalid", "invalid.unknown_fields", "payload.shares[1]")


def test_an_allocation_departing_from_the_advice_is_answered_with_the_warning(settings: Settings) -> None:
    def advisor(year: int, factor: str, total: Decimal, as_of: date) -> list[tuple[str, Decimal]]:
        return [("620102", total / 2), ("620103", total / 2)]

    ledger = build_ledger(settings, advisor=advisor)
    try:
        with TestClient(create_app(ledger, settings), base_url=LOCAL) as client:
            result = post(client, adopt())
            assert [w["code"] for w in result["warnings"]] == ["allocation_deviates"]
            assert result["warnings"][0]["detail_code"] == "allocation_deviates.from_advice"
        kept = ledger.get(allocation_id_of("AL-1")).advice
        assert kept == [{"district": "620102", "share": 50}, {"district": "620103", "share": 50}]
    finally:
        ledger.close()


def test_the_openapi_publishes_the_new_payloads_and_the_shares(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    shares = schemas["AdoptAllocationPayload"]["properties"]["shares"]
    assert (shares["type"], shares["minItems"], shares["maxItems"]) == ("array", 1, 100)
    item = schemas[shares["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(item["required"]) == {"district", "amount"} and item["additionalProperties"] is False
    assert "620102" in item["properties"]["district"]["enum"]
    for payload in ("DisburseFundsPayload", "ApproveLandPayload", "AmendProjectPayload", "AssignSupervisionPayload",
                    "RespondSupervisionPayload", "CloseSupervisionPayload"):
        assert payload in schemas, payload
    assert schemas["CloseSupervisionPayload"]["properties"]["outcome"]["enum"] == ["rectified", "reclaimed", "waived"]
    assert "approval_id" in schemas["SupplyLandPayload"]["properties"]
    assert "special_bond" in schemas["SetQuotaPayload"]["properties"]["factor"]["enum"]


def test_a_message_refused_over_http_is_kept_with_its_body(client: TestClient) -> None:
    body = msg("supervision.responded", {"case_id": "DB-404", "measures": "整改", "expected_by": "2021-03-20"},
               dept="natural_resources", mid="kept-1")
    assert post(client, body)["code"] == "unknown_reference"  # over HTTP answered at once, never parked
    (kept,) = [r for r in client.get("/v1/rejections", headers=SUPERVISOR).json()["rejections"]
               if r["message_id"] == "kept-1"]
    assert kept["type"] == "supervision.responded" and kept["detail_params"] == {"project": CODE, "case": "DB-404"}
