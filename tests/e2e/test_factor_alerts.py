"""The factor-level rules of v1.2 over HTTP, on both stores: `GET /v1/alerts` with the new rules,
fields and filters, the ranking's cases, and the advice by factor (and the advisor the wiring gives)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from api import schemas
from domain.ranking import DistrictScore, allocation_advice
from infra.settings import Settings
from service.bootstrap import build_ledger
from tests.factorstory import factor_story
from tests.readmodels import served
from yaosu.wiring import Wiring

SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}
DAY = "2022-06-02"  # money, land and energy idle, approvals unsupplied, cases open and overdue


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    ledger = build_ledger(settings)
    factor_story(ledger)
    with served(ledger, settings) as test:
        yield test


def get(client: TestClient, path: str, model: Any) -> Any:
    response = client.get(path, headers=SUPERVISOR)
    assert response.status_code == 200, response.text
    body = response.json()
    model.model_validate(body)  # the published schema describes what is served
    return body


def alerts(client: TestClient, query: str = "") -> list[dict[str, Any]]:
    return get(client, f"/v1/alerts?as_of={DAY}{query}", schemas.AlertsResponse)["alerts"]  # type: ignore[no-any-return]


def test_the_new_rules_are_listed_with_their_grant_factor_case_and_subject(client: TestClient) -> None:
    everything = alerts(client)
    rules = {a["rule"] for a in everything}
    assert {"funds_idle", "land_idle", "land_unsupplied", "energy_idle", "supervision_overdue"} <= rules
    for a in everything:
        assert {"grant_id", "factor", "reclaimable", "case_id", "subject", "detail_code"} <= set(a)
        if a["rule"] in ("funds_idle", "land_idle", "energy_idle"):
            assert a["ref"] == a["grant_id"] and a["factor"] == a["rule"].partition("_")[0]
            assert a["subject"] == a["project_code"]
    unsupplied = [a for a in everything if a["rule"] == "land_unsupplied"]
    assert [(a["project_code"], a["subject"], a["district"], a["department"], a["factor"]) for a in unsupplied] == [
        (None, "PC-2021-002", "620103", "natural_resources", "land"),
        (None, "PC-2021-003", "620104", "natural_resources", "land")]
    assert unsupplied[0]["detail_code"] == "land_unsupplied.left" and unsupplied[0]["detail_params"]["unsupplied"] == "60"
    # the case assigned about idle funds (DB-2-2) is named by its alert; the case itself is overdue
    funds = [a for a in everything if a["rule"] == "funds_idle" and a["case_id"]]
    assert funds and all(a["case_id"].startswith("DB-") for a in funds)
    overdue = [a for a in everything if a["rule"] == "supervision_overdue"]
    assert overdue and all(a["ref"].startswith("DB-") and a["level"] == "red" for a in overdue)


@pytest.mark.parametrize("query", ["&rule=land_unsupplied", "&factor=land", "&factor=funds&level=red",
                                   "&district=620104&rule=land_idle", "&department=natural_resources",
                                   "&rule=supervision_overdue"])
def test_the_filters_apply_to_the_new_rules(client: TestClient, query: str) -> None:
    wanted = dict(part.split("=") for part in query.strip("&").split("&"))
    found = alerts(client, query)
    assert found and found == [a for a in alerts(client) if all(a[k] == v for k, v in wanted.items())]


def test_a_bad_factor_filter_is_400(client: TestClient) -> None:
    assert client.get("/v1/alerts?factor=water", headers=SUPERVISOR).status_code == 400


def test_reclaimable_land_is_said_and_downloaded(client: TestClient) -> None:
    later = get(client, "/v1/alerts?as_of=2023-05-01&rule=land_idle", schemas.AlertsResponse)["alerts"]
    assert any(a["reclaimable"] for a in later) and any(not a["reclaimable"] for a in alerts(client, "&rule=land_idle"))
    response = client.get("/v1/alerts?as_of=2023-05-01&rule=land_idle&format=csv&lang=zh", headers=SUPERVISOR)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert {"要素编号", "要素", "可收回", "督办编号", "预警对象"} <= set(rows[0])
    assert any("供而未用" in cell for row in rows[1:] for cell in row) and any("是" in row for row in rows[1:])


def test_the_ranking_counts_the_cases(client: TestClient) -> None:
    ranking = get(client, "/v1/rankings/districts?year=2021&as_of=2021-12-31", schemas.RankingResponse)["districts"]
    counted = {r["district"]: (r["cases_open"], r["cases_closed_in_time"]) for r in ranking}
    # 620102: DB-3-1 open; DB-6-1 closed 20 days after its due date (in time), DB-0-1 51 days after it (late)
    assert counted["620102"] == (1, 1)
    assert counted["620103"] == (0, 0)
    assert counted["620104"] == (3, 0)  # DB-2-2, DB-5-2, DB-8-2 about funds: open
    assert sum(r["red_alerts"] + r["yellow_alerts"] for r in ranking) > 0


def test_the_advice_weighs_how_each_district_uses_that_factor(client: TestClient) -> None:
    query = "year=2021&total=1000&as_of=2022-06-02"
    ranking = get(client, "/v1/rankings/districts?year=2021&as_of=2022-06-02", schemas.RankingResponse)["districts"]
    plain = {s.district: s.share for s in allocation_advice(
        [DistrictScore(**{k: Decimal(str(v)) if isinstance(v, float) else v for k, v in row.items()})
         for row in ranking], Decimal(1000))}
    by_factor = {}
    for factor in ("land", "energy", "special_bond"):
        advice = get(client, f"/v1/allocation/advice?{query}&factor={factor}", schemas.AdviceResponse)
        shares = {s["district"]: Decimal(str(s["share"])) for s in advice["shares"]}
        assert sum(shares.values()) == Decimal(1000)
        by_factor[factor] = shares
        idle = [s for s in advice["shares"] if s["detail_code"] == "advice.weight_idle"]
        assert idle and all(Decimal(s["detail_params"]["idle_percent"]) > 0 for s in idle)
    assert by_factor["land"] != by_factor["energy"] != plain  # the advice differs by factor
    # 620102 sits on more idle land than the others: it is advised less land than the score alone gives it
    assert by_factor["land"]["620102"] < plain["620102"]


def test_the_wiring_advises_allocations_as_the_api_does(client: TestClient, settings: Settings) -> None:
    answer = get(client, "/v1/allocation/advice?year=2021&factor=land&total=500&as_of=2022-06-02",
                 schemas.AdviceResponse)
    with Wiring(settings) as wiring:
        advised = wiring.advise(2021, "land", Decimal(500), date(2022, 6, 2))
        assert advised == [(s["district"], Decimal(str(s["share"]))) for s in answer["shares"]]
        assert wiring.advise(1999, "land", Decimal(500), date(2022, 6, 2)) is None  # no district ranked: no advice
