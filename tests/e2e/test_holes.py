"""The holes contract v1.2 closes, through `POST /v1/messages` with each department's own token, on
SQLite and PostgreSQL: who admits to which library, land within a land quota, completion from
construction, the epidemic exemption within its assessment, and lagging counted from reports due
(read back through `GET /v1/alerts`)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.settings import Settings
from projections.read import ReadModels
from projections.runner import Runner
from service.ledger import Ledger
from tests.conftest import LOCAL
from tests.portal import CODE, OTHER, msg, register

SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}


def token(department: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev-{department.replace(':', '-')}"}


@pytest.fixture
def client(ledger: Ledger, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(ledger, settings), base_url=LOCAL) as test:
        yield test


def send(client: TestClient, department: str, type_: str, payload: dict[str, Any], *, code: str | None = CODE,
         at: str = "2021-03-02T10:00:00+08:00") -> str:
    """One message from the department's own portal token: "accepted" or the rejection's code."""
    response = client.post("/v1/messages", json=msg(type_, payload, code=code, dept=department, at=at),
                           headers=token(department))
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    return "accepted" if result["status"] == "accepted" else str(result["code"])


def registered(client: TestClient, code: str = CODE, **overrides: Any) -> None:
    body = register(code, **overrides)
    response = client.post("/v1/messages", json=body, headers=token("development_reform"))
    assert response.json()["results"][0]["status"] == "accepted", response.text


def admit(client: TestClient, department: str, library: str, code: str = CODE) -> str:
    return send(client, department, "project.admitted", {"library": library, **({"year": 2021} if library == "annual"
                                                                                 else {})}, code=code)


def test_who_admits_to_which_library(client: TestClient) -> None:
    registered(client)  # in 620102, owned by industry_it
    refused = [("district:620102", "annual"), ("district:620102", "special_bond"), ("industry_it", "central_budget"),
               ("industry_it", "annual"), ("district:620103", "municipal"), ("transport", "municipal")]
    assert [admit(client, d, library) for d, library in refused] == ["forbidden"] * len(refused)
    allowed = [("district:620102", "municipal"), ("finance", "special_bond"), ("finance", "municipal_budget"),
               ("cooperation_exchange", "investment_attraction"), ("financial_affairs", "green_fund"),
               ("development_reform", "annual")]
    assert [admit(client, d, library) for d, library in allowed] == ["accepted"] * len(allowed)
    state = client.get(f"/v1/projects/{CODE}", headers=SUPERVISOR).json()
    assert {m["library"] for m in state["libraries"]} == {library for _, library in allowed}
    # Released by the same table: not by the owner from the annual library, by finance from its bonds.
    release = [("industry_it", "annual"), ("finance", "annual"), ("finance", "special_bond"),
               ("investment_promotion", "investment_attraction"), ("industry_it", "municipal")]
    assert [send(client, d, "project.released", {"library": library, "reason": "调出"}) for d, library in release] == [
        "forbidden", "forbidden", "accepted", "accepted", "accepted"]


def test_land_only_within_a_land_quota(client: TestClient) -> None:
    registered(client)
    assert admit(client, "development_reform", "municipal") == admit(client, "development_reform", "annual") == "accepted"
    land = {"parcel": "LZ-1", "area_mu": 99999, "method": "transfer"}
    assert send(client, "natural_resources", "land.supplied", land) == "quota_exceeded"
    assert send(client, "natural_resources", "quota.set", {"district": "620102", "year": 2021, "factor": "land",
                                                           "amount": 100}, code=None) == "accepted"
    assert send(client, "natural_resources", "land.supplied", land) == "quota_exceeded"
    assert send(client, "natural_resources", "land.supplied", {**land, "area_mu": 100}) == "accepted"


def test_completion_only_from_construction(client: TestClient) -> None:
    registered(client)
    assert admit(client, "development_reform", "municipal") == "accepted"
    assert send(client, "development_reform", "construction.started", {"date": "2021-03-01"}) == "accepted"
    for stage in ("generation", "approval"):
        assert send(client, "development_reform", "stage.advanced", {"stage": stage}) == "accepted"
    completed = {"date": "2021-12-01"}
    assert send(client, "development_reform", "project.completed", completed, at="2021-12-02T09:00:00+08:00") == (
        "stage_order")
    assert send(client, "development_reform", "stage.advanced", {"stage": "construction"}) == "accepted"
    assert send(client, "development_reform", "project.completed", completed, at="2021-12-02T09:00:00+08:00") == (
        "accepted")


def test_the_exemption_ends_with_the_assessment(client: TestClient) -> None:
    registered(client, nature="epidemic_supplies")
    assert admit(client, "development_reform", "municipal") == "accepted"
    assert send(client, "development_reform", "energy.granted", {"tce": 10, "year": 2021, "exempt": True}) == "invalid"
    assert send(client, "development_reform", "energy.granted", {"tce": 10, "year": 2020, "exempt": True}) == "accepted"


def test_lagging_counts_a_month_once_its_report_is_due(client: TestClient, ledger: Ledger, settings: Settings) -> None:
    """CODE keeps 90 % of its plan's pace, each month reported on the 5th of the next, before it is due;
    OTHER reports nothing. Only OTHER lags, and only once a month's report is due."""
    for code, district in ((CODE, "620102"), (OTHER, "620103")):
        registered(client, code, district=district)
        assert admit(client, "development_reform", "municipal", code) == "accepted"
        assert send(client, "development_reform", "plan.set", {"year": 2021, "planned_investment": 1200}, code=code,
                    at="2021-01-12T09:00:00+08:00") == "accepted"
        assert send(client, "development_reform", "construction.started", {"date": "2021-01-15"}, code=code,
                    at="2021-01-15T09:00:00+08:00") == "accepted"
    for month in (1, 2, 3, 4):
        assert send(client, "statistics", "investment.reported", {"period": f"2021-{month:02d}", "completed": 90},
                    at=f"2021-{month + 1:02d}-05T09:00:00+08:00") == "accepted"
    runner = Runner(ledger, settings)
    runner.run_until_caught_up()
    runner.close()
    reads = ReadModels(settings)
    try:
        with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as reader:
            def lagging(as_of: str) -> list[tuple[str, str]]:
                answer = reader.get(f"/v1/alerts?as_of={as_of}&rule=lagging", headers=SUPERVISOR)
                assert answer.status_code == 200, answer.text
                return [(a["project_code"], a["level"]) for a in answer.json()["alerts"]]

            assert lagging("2021-03-09") == []  # only January's report is due: 8.3 % expected
            assert lagging("2021-03-10") == [(OTHER, "yellow")]  # February's too: 16.7 %
            # On March 31, March's report is not due yet: two months count, not three (CODE at 15 % of 16.7 %).
            assert lagging("2021-03-31") == [(OTHER, "yellow")]
            assert lagging("2021-04-10") == [(OTHER, "yellow")]  # March's: 25 % expected, CODE at 22.5 %
            assert lagging("2021-05-10") == [(OTHER, "red")]  # April's: 33.3 % expected of nothing
    finally:
        reads.close()
