"""A rejection's reason by code, over HTTP on both stores (issue 20, item 2; contract v1.2 "Reads").

Every way a rejection is read gives `detail_code` + `detail_params` beside the English `reason`: the
answer to the message, `/v1/rejections`, the feed's `message.rejected`, `/v1/parked`. The console's
rejections page and the rejections export say the reason in Chinese.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from api import schemas
from api.app import create_app
from api.console.i18n import worded
from consumers.portal import KAFKA_PRINCIPAL
from infra.settings import Settings
from projections.read import ReadModels
from projections.runner import Runner
from service.ledger import Ledger
from tests.conftest import LOCAL, submit
from tests.console import sign_in
from tests.portal import CODE, admitted, msg
from tests.unit.test_parking import parking

SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}
ADMIN = {"Authorization": "Bearer dev-admin"}
UNREGISTERED = "2021-620102-48-01-654321"
#: A land grant larger than what is left of the district's quota: a rejection with numbers and codes.
TOO_MUCH = msg("land.supplied", {"parcel": "LZ-1", "area_mu": 500, "method": "transfer"}, dept="natural_resources",
               mid="too-much-1")
QUOTA = msg("quota.set", {"district": "620102", "year": 2021, "factor": "land", "amount": 100}, code=None,
            dept="natural_resources", mid="quota-1")


@pytest.fixture
def client(ledger: Ledger, settings: Settings) -> Iterator[TestClient]:
    submit(ledger, *admitted(CODE, "annual"), QUOTA)
    reads = ReadModels(settings)
    try:
        with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as test:
            yield test
    finally:
        reads.close()


def catch_up(ledger: Ledger, settings: Settings) -> None:
    runner = Runner(ledger, settings)
    try:
        runner.run_until_caught_up()
    finally:
        runner.close()


QUOTA_PARAMS = {"amount": 500, "factor": "land", "district": "620102", "year": 2021, "remaining": 100, "quota": 100}
QUOTA_REASON = "500 exceeds the land quota remaining for district 620102 in 2021 (100 of 100)"


def test_each_way_a_rejection_is_read_gives_its_text_code_and_parameters(client: TestClient) -> None:
    (result,) = client.post("/v1/messages", json=TOO_MUCH, headers=ADMIN).json()["results"]
    schemas.MessageResult.model_validate(result)
    assert result == {"message_id": "too-much-1", "status": "rejected", "code": "quota_exceeded",
                      "reason": QUOTA_REASON, "detail_code": "quota_exceeded.remaining", "detail_params": QUOTA_PARAMS,
                      "position": result["position"]}
    (listed,) = client.get("/v1/rejections", headers=SUPERVISOR).json()["rejections"]
    schemas.Rejection.model_validate(listed)
    assert (listed["reason"], listed["detail_code"], listed["detail_params"]) == (
        QUOTA_REASON, "quota_exceeded.remaining", QUOTA_PARAMS)
    events = client.get("/v1/events?limit=1000", headers=SUPERVISOR).json()["events"]
    (kept,) = [e for e in events if e["event"] == "message.rejected"]
    assert (kept["data"]["reason"], kept["data"]["detail_code"], kept["data"]["detail_params"]) == (
        QUOTA_REASON, "quota_exceeded.remaining", QUOTA_PARAMS)


def test_another_portal_reads_no_word_of_a_rejection_in_the_feed(client: TestClient) -> None:
    """What quotes a message another portal sent is withheld in the feed: its reason, its parameters,
    and no other field says them again (an English `detail` rendered from the code)."""
    client.post("/v1/messages", json=TOO_MUCH, headers=ADMIN)
    events = client.get("/v1/events?limit=1000", headers={"Authorization": "Bearer dev-big_data"}).json()["events"]
    (kept,) = [e for e in events if e["event"] == "message.rejected"]
    assert kept["data"]["reason"] is None and kept["data"]["detail_params"] is None
    assert not any(isinstance(v, str) and "exceeds" in v for v in kept["data"].values()), kept["data"]


def test_a_parked_message_is_listed_with_its_text_code(client: TestClient, ledger: Ledger, settings: Settings) -> None:
    waiting = msg("data.provided", {"kind": "k", "reference": "r"}, code=UNREGISTERED, dept="big_data", mid="early-1")
    (result,) = ledger.submit([waiting], principal=KAFKA_PRINCIPAL, channel="kafka", keys=[b"620102"],
                              origins=["kafka:yaosu.portal.v1:0@7"], parking=parking())
    assert result.status == "parked"
    catch_up(ledger, settings)
    (parked,) = client.get("/v1/parked", headers=SUPERVISOR).json()["parked"]
    schemas.ParkedItem.model_validate(parked)
    assert (parked["reason"], parked["detail_code"], parked["detail_params"]) == (
        f"no project is registered as {UNREGISTERED}", "unknown_project.not_registered", {"project": UNREGISTERED})
    other = client.get("/v1/parked", headers={"Authorization": "Bearer dev-natural_resources"}).json()["parked"]
    assert other[0]["detail_params"] is None and "detail_params" in other[0]["withheld"]  # it quotes the message


def test_the_console_and_the_export_say_the_reason_in_chinese(client: TestClient) -> None:
    client.post("/v1/messages", json=TOO_MUCH, headers=ADMIN)
    chinese = "超出年度指标：本次 500亩，超过城关区2021年度土地指标余量（余 100亩，共 100亩）"
    sign_in(client)
    page = client.get("/console/rejections").text
    assert chinese in page and QUOTA_REASON not in page
    client.get("/console/lang/en")
    assert QUOTA_REASON in client.get("/console/rejections").text
    rows = export(client, "zh")
    assert rows[1][rows[0].index("退回原因")] == chinese
    english = export(client, "en")
    assert english[1][english[0].index("Reason")] == QUOTA_REASON


def export(client: TestClient, lang: str) -> list[list[str]]:
    answer = client.get(f"/v1/rejections?format=csv&lang={lang}", headers=SUPERVISOR)
    assert answer.status_code == 200, answer.text
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


def test_a_reason_without_a_code_is_shown_as_it_was_kept() -> None:
    """A rejection kept before reasons had codes (null `detail_code`) is shown in its English, on every page."""
    kept: dict[str, Any] = {"reason": "no project is registered as X", "detail_code": None, "detail_params": None}
    assert worded(kept, "zh", "reason") == "no project is registered as X"
