"""The read side of the contract over HTTP: libraries, matrix, stages, ledger, statistics, alerts, metrics."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api import schemas
from api.app import create_app
from infra.settings import Settings
from tests.conftest import LOCAL
from tests.readmodels import demo_store
from yaosu.demo import STORY_PROJECTS

SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with demo_store(settings, projects=60) as (ledger, reads), TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as test:
        yield test


SCHEMAS = {"/v1/libraries/municipal/matrix": schemas.MatrixResponse, "/v1/libraries/": schemas.LibraryResponse,
           "/v1/stages": schemas.StagesResponse, "/v1/ledger": schemas.LedgerResponse,
           "/v1/stats/investment": schemas.InvestmentResponse, "/v1/alerts": schemas.AlertsResponse,
           "/v1/warnings": schemas.WarningsResponse, "/v1/rankings/districts": schemas.RankingResponse,
           "/v1/allocation/advice": schemas.AdviceResponse, "/v1/audit": schemas.AuditResponse}


def get(client: TestClient, path: str) -> Any:
    response = client.get(path, headers=SUPERVISOR)
    assert response.status_code == 200, response.text
    body = response.json()
    model = next(m for prefix, m in SCHEMAS.items() if path.startswith(prefix))
    model.model_validate(body)  # the published schema describes what is served
    return body


def test_libraries_filters_totals_and_matrix(client: TestClient) -> None:
    everyone = get(client, "/v1/libraries/municipal")
    assert everyone["totals"]["projects"] == len(everyone["members"]) > 50
    city = get(client, "/v1/libraries/municipal?district=620102")
    assert city["members"] and all(m["district"] == "620102" for m in city["members"])
    assert city["totals"]["total_investment"] == sum(m["total_investment"] for m in city["members"])
    matrix = get(client, "/v1/libraries/municipal/matrix")
    assert matrix["totals"]["projects"] == everyone["totals"]["projects"]
    assert Decimal(str(matrix["totals"]["total_investment"])) == Decimal(str(everyone["totals"]["total_investment"]))
    assert {(c["district"], c["sector"]) for c in matrix["cells"]} == {(m["district"], m["sector"]) for m in everyone["members"]}
    bad = client.get("/v1/libraries/nope", headers=SUPERVISOR)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"


def test_stages_board(client: TestClient) -> None:
    board = get(client, "/v1/stages")
    assert [s["stage"] for s in board["stages"]] == ["planning", "generation", "approval", "construction", "completion"]
    # The demo's 60 projects, the stray one among them, and its v1.2 story's.
    assert sum(s["count"] for s in board["stages"]) == 60 + STORY_PROJECTS
    construction = get(client, "/v1/stages?stage=construction&district=620102")["stages"][0]
    for p in construction["projects"]:
        assert p["district"] == "620102"
        assert sorted(p["satisfied"] + p["missing"]) == sorted(construction["factors"])


def test_ledger_and_project_grants(client: TestClient) -> None:
    rows = get(client, "/v1/ledger?year=2021&factor=energy")["rows"]
    assert rows and all(r["factor"] == "energy" for r in rows)
    for r in rows:
        assert r["remaining"] == r["quota"] - r["granted"] + r["reclaimed"]
        assert r["granted"] <= r["quota"]
    code = get(client, "/v1/stages?stage=construction")["stages"][0]["projects"][0]["code"]
    grants = get(client, f"/v1/ledger?project={code}")["grants"]
    assert grants and all(g["code"] == code and g["department"] for g in grants)


def test_investment_statistics(client: TestClient) -> None:
    by_sector = get(client, "/v1/stats/investment?by=sector&year=2021")["rows"]
    by_district = get(client, "/v1/stats/investment?by=district&year=2021")["rows"]
    total = lambda rows, k: round(sum(Decimal(str(r[k])) for r in rows), 2)  # noqa: E731
    assert total(by_sector, "planned") == total(by_district, "planned") > 0
    assert total(by_sector, "completed") == total(by_district, "completed") > 0


def test_alerts_with_filters(client: TestClient) -> None:
    everything = get(client, "/v1/alerts?as_of=2021-09-30")
    assert everything["as_of"] == "2021-09-30" and everything["alerts"]
    for alert in everything["alerts"]:
        assert {"project_code", "rule", "level", "since", "district", "detail"} <= set(alert)
        assert alert["since"] <= "2021-09-30"
    red = get(client, "/v1/alerts?as_of=2021-09-30&level=red&rule=not_started")["alerts"]
    assert red and all(a["level"] == "red" and a["rule"] == "not_started" for a in red)
    assert len(red) < len(everything["alerts"])
    assert client.get("/v1/alerts?level=purple", headers=SUPERVISOR).status_code == 400


def test_metrics_are_what_prometheus_reads(client: TestClient) -> None:
    assert client.get("/v1/stages", headers=SUPERVISOR).status_code == 200  # a request to count
    text = client.get("/metrics").text
    # promtool (Debian's prometheus package, installed by `make test`) lints the exposition.
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    families = {f.name: f for f in text_string_to_metric_families(text)}  # prometheus_client's own parser
    assert {name: families[name].type for name in (
        "yaosu_store_head", "yaosu_projection_lag_events", "yaosu_http_requests", "yaosu_http_request_duration_seconds",
        "yaosu_messages", "yaosu_pipeline_batch_duration_seconds", "yaosu_parked_messages")} == {
        "yaosu_store_head": "gauge", "yaosu_projection_lag_events": "gauge", "yaosu_http_requests": "counter",
        "yaosu_http_request_duration_seconds": "histogram", "yaosu_messages": "counter",
        "yaosu_pipeline_batch_duration_seconds": "histogram", "yaosu_parked_messages": "gauge"}
    lag = {s.labels["projection"]: s.value for s in families["yaosu_projection_lag_events"].samples}
    assert lag["ledger"] == 0 and set(lag) >= {"libraries", "stages", "sedimentation", "parked"}
    stages = [s for s in families["yaosu_http_requests"].samples
              if s.labels.get("route") == "/v1/stages" and s.labels.get("status") == "200"]
    assert stages and stages[0].value >= 1


@pytest.mark.parametrize("path", [
    f"/v1/ledger?year={2**63}", f"/v1/stats/investment?year={2**63}", "/v1/ledger?year=1989",
    "/v1/alerts?as_of=9999-12-31", "/v1/alerts?as_of=2101-01-01", "/v1/stages?district=110101",
    "/v1/libraries/municipal?sector=Z", "/v1/ledger?project=not-a-code",
])
def test_out_of_range_parameters_are_400(client: TestClient, path: str) -> None:
    answer = client.get(path, headers=SUPERVISOR)
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json", answer.text


def test_the_farthest_date_is_answered(client: TestClient) -> None:
    # Lagging is evaluated over the as-of year's month ends only: 2100 costs what 2021 costs.
    far = get(client, "/v1/alerts?as_of=2100-12-31")
    assert far["as_of"] == "2100-12-31" and far["alerts"]


def test_warnings_listed_and_filtered(client: TestClient) -> None:
    everything = get(client, "/v1/warnings?limit=1000")["warnings"]
    assert {w["code"] for w in everything} >= {"budget_priority", "started_before_approval"}
    for field, value in (("code", "budget_priority"), ("district", everything[0]["district"]),
                         ("department", everything[0]["department"])):
        filtered = get(client, f"/v1/warnings?{field}={value}&limit=1000")["warnings"]
        assert filtered == [w for w in everything if w[field] == value]
    day = everything[len(everything) // 2]["occurred_at"][:10]
    assert get(client, f"/v1/warnings?from={day}&to={day}&limit=1000")["warnings"] == [
        w for w in everything if w["occurred_at"][:10] == day]
    first = get(client, "/v1/warnings?limit=2")
    assert first["warnings"] == everything[:2] and get(
        client, f"/v1/warnings?after={first['next_after']}&limit=1000")["warnings"] == everything[2:]
    code = everything[0]["project_code"]
    history = client.get(f"/v1/projects/{code}/history", headers=SUPERVISOR).json()["events"]
    assert any(w["code"] == everything[0]["code"] for e in history for w in e["warnings"])


def test_alerts_say_who_answers_for_them(client: TestClient) -> None:
    alerts = get(client, "/v1/alerts?as_of=2021-09-30")["alerts"]
    assert all(a["department"] for a in alerts) and any(a["leader"] for a in alerts)
    department = alerts[0]["department"]
    assert get(client, f"/v1/alerts?as_of=2021-09-30&department={department}")["alerts"] == [
        a for a in alerts if a["department"] == department]


def test_ranking_and_advice(client: TestClient) -> None:
    ranking = get(client, "/v1/rankings/districts?year=2021&as_of=2021-09-30")["districts"]
    assert ranking and [r["rank"] for r in ranking] == sorted(r["rank"] for r in ranking) and ranking[0]["rank"] == 1
    assert all(0 <= r["score"] <= 100 for r in ranking)
    advice = get(client, "/v1/allocation/advice?year=2021&factor=land&total=1234.5&as_of=2021-09-30")
    assert round(sum(Decimal(str(s["share"])) for s in advice["shares"]), 2) == Decimal("1234.50")
    assert [s["district"] for s in advice["shares"]] == [r["district"] for r in ranking]
    assert client.get("/v1/allocation/advice?year=2021&factor=water&total=1", headers=SUPERVISOR).status_code == 400
    assert client.get("/v1/allocation/advice?year=2021&factor=land&total=0", headers=SUPERVISOR).status_code == 400


def test_audit_search_answers_like_the_feed_and_downloads(client: TestClient) -> None:
    entries = get(client, "/v1/audit?limit=1000")["entries"]
    feed = client.get("/v1/events?limit=1000", headers=SUPERVISOR).json()["events"]
    domain = [e for e in feed if e["event"].split(".")[0] not in ("message", "parkedmessage", "supervisionclock")]
    assert [e["position"] for e in entries if e["position"] <= feed[-1]["position"]] == [e["position"] for e in domain]
    by_position = {e["position"]: e for e in domain}
    for entry in entries[:200]:
        event = by_position[entry["position"]]
        assert (entry["type"], entry["message_id"], entry["submitted_by"]) == (
            event["type"], event["message_id"], event["submitted_by"])
    some = next(e for e in entries if e["department"] and e["event"].startswith("project."))
    for field, parameter in (("department", "department"), ("subject", "project"), ("type", "type"),
                             ("actor", "actor"), ("district", "district")):
        found = get(client, f"/v1/audit?{parameter}={some[field]}&limit=1000")["entries"]
        assert found and all(e[field] == some[field] for e in found), field
    # The demo records a message the day it happened or up to three days after.
    late = get(client, "/v1/audit?late_days=2&limit=1000")["entries"]
    assert late and all(e["late_days"] >= 2 for e in late)
    first = get(client, "/v1/audit?limit=3")
    assert get(client, f"/v1/audit?after={first['next_after']}&limit=3")["entries"] == entries[3:6]
    csv = client.get("/v1/audit?format=csv&lang=zh&limit=5", headers=SUPERVISOR)
    assert csv.status_code == 200 and "迟报天数" in csv.text and str(entries[0]["position"]) in csv.text
    xlsx = client.get("/v1/audit?format=xlsx&limit=5", headers=SUPERVISOR)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
