"""The reads of supervision cases (督办) over HTTP on both stores: the list with its filters and downloads,
one case with its messages in order, the console's 督办 pages, and the ledger's new columns
(disbursed, idle, approved, unsupplied as of a day).

The cases are written as the write side records them: the project's own events, saved to the store
(the messages' checks are the write side's, tested there)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterator

import openpyxl
import pytest
from fastapi.testclient import TestClient

from api import schemas
from api.supervision import CaseResponse, SupervisionResponse
from domain.approval import LandApproval
from domain.audit import Audit
from domain.reference import CITY_TZ
from infra.settings import Settings
from projections.supervision import LISTING
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import submit
from tests.console import sign_in
from tests.e2e.test_texts import english_on
from tests.portal import CODE, OTHER, admitted, msg
from tests.readmodels import served

SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}
FUNDS_GRANT = "funds-1"
#: The cases written: A answered in time and closed, B never answered, C answered late (on OTHER).
A, B, C = "DB-2021-001", "DB-2021-002", "DB-2021-003"


def audit(message_id: str, message_type: str, day: str, department: str, subject: str) -> Audit:
    return Audit(message_id=message_id, message_type=message_type,
                 occurred_at=datetime.fromisoformat(f"{day}T10:00:00").replace(tzinfo=CITY_TZ), source="test-portal",
                 department=department, user="li.si", submitted_by="admin:test", subject=subject)


def write_cases(ledger: Ledger) -> None:
    """Three cases, a disbursement, and an approval partly drawn on, as the write side records them."""
    project, other = ledger.project(CODE), ledger.project(OTHER)
    assert project is not None and other is not None
    project.assign_supervision(A, "not_started", None, "industry_it", date(2021, 3, 15), "限期开工",
                               audit("m-a1", "supervision.assigned", "2021-03-01", "supervision_office", CODE))
    project.respond_supervision(A, "已落实施工队伍", date(2021, 3, 30),
                                audit("m-a2", "supervision.responded", "2021-03-10", "industry_it", CODE))
    project.close_supervision(A, "rectified", "已开工",
                              audit("m-a3", "supervision.closed", "2021-04-01", "supervision_office", CODE))
    project.assign_supervision(B, "lagging", FUNDS_GRANT, "finance", date(2021, 3, 20), "加快资金拨付",
                               audit("m-b1", "supervision.assigned", "2021-03-05", "development_reform", CODE))
    project.disburse_funds(FUNDS_GRANT, Decimal(200), date(2021, 3, 10),
                           audit("m-pay", "funds.disbursed", "2021-03-10", "finance", CODE))
    other.assign_supervision(C, "not_started", None, "natural_resources", date(2021, 3, 31), "尽快供地",
                             audit("m-c1", "supervision.assigned", "2021-03-02", "development_reform", OTHER))
    other.respond_supervision(C, "正在组卷报批", date(2021, 5, 30),
                              audit("m-c2", "supervision.responded", "2021-04-05", "natural_resources", OTHER))
    approval = LandApproval(approval_id="PF-2021-01", district="620102", area_mu=Decimal(100), date=date(2021, 2, 1),
                            audit=audit("m-ap", "land.approved", "2021-02-01", "natural_resources", "PF-2021-01"))
    approval.draw("land-1", CODE, Decimal(30), audit("land-1", "land.supplied", "2021-03-01", "natural_resources", CODE))
    ledger.save(project, other, approval)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    ledger = build_ledger(settings)
    results = submit(ledger, *admitted(CODE), *admitted(OTHER, district="620103"),
                     msg("funds.allocated", {"source": "own_funds", "amount": 500, "document": "兰财〔2021〕1号"},
                         dept="finance", mid=FUNDS_GRANT))
    assert {r.status for r in results} == {"accepted"}, results
    write_cases(ledger)
    with served(ledger, settings) as test:
        yield test


def cases(client: TestClient, query: str) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/supervision?{query}", headers=SUPERVISOR)
    assert answer.status_code == 200, answer.text
    SupervisionResponse.model_validate(answer.json())  # the published schema describes what is served
    return answer.json()["cases"]  # type: ignore[no-any-return]


def ids(found: list[dict[str, Any]]) -> list[str]:
    return [c["case_id"] for c in found]


def test_the_list_reads_each_case_as_it_stood_on_the_day(client: TestClient) -> None:
    assert ids(cases(client, "as_of=2021-03-03")) == [A, C]  # B is assigned on the 5th
    on_21st = {c["case_id"]: c for c in cases(client, "as_of=2021-03-21")}
    assert list(on_21st) == [A, C, B]  # in the order assigned
    a, b, c = on_21st[A], on_21st[B], on_21st[C]
    assert (a["status"], a["responses"], a["last_response"], a["closed_on"], a["overdue"]) == (
        "responded", 1, "2021-03-10", None, False)
    assert (b["status"], b["responses"], b["overdue"], b["days_open"], b["grant_id"]) == ("open", 0, True, 16, FUNDS_GRANT)
    assert (c["project_code"], c["district"], c["responsible"], c["assigned_by"], c["due_date"]) == (
        OTHER, "620103", "natural_resources", "development_reform", "2021-03-31")
    assert a["project_name"] and a["rule"] == "not_started" and a["assigned_by"] == "supervision_office"
    closed = {c["case_id"]: c for c in cases(client, "as_of=2021-04-10")}[A]
    assert (closed["status"], closed["closed_on"], closed["outcome"], closed["days_open"]) == (
        "closed", "2021-04-01", "rectified", 31)


def test_the_status_filter_is_read_against_the_as_of_day(client: TestClient) -> None:
    assert ids(cases(client, "as_of=2021-03-21&status=open")) == [C, B]
    assert ids(cases(client, "as_of=2021-03-21&status=responded")) == [A]
    assert ids(cases(client, "as_of=2021-03-21&status=overdue")) == [B]  # C is due on the 31st
    assert ids(cases(client, "as_of=2021-03-21&status=closed")) == []
    # C was overdue until it was answered on 5 April (late), as its alert was; A closed on 1 April.
    assert ids(cases(client, "as_of=2021-04-04&status=overdue")) == [C, B]
    assert ids(cases(client, "as_of=2021-04-10&status=overdue")) == [B]
    assert ids(cases(client, "as_of=2021-04-10&status=responded")) == [C]
    assert ids(cases(client, "as_of=2021-04-10&status=closed")) == [A]


def test_a_case_answered_in_time_and_closed_within_the_grace_days_is_never_overdue(client: TestClient) -> None:
    """A was answered in time and closed on 1 April, within 30 days of its due date (15 March)."""
    for day in ("2021-03-14", "2021-03-16", "2021-03-31", "2021-04-02", "2021-12-31"):
        assert A not in ids(cases(client, f"as_of={day}&status=overdue")), day


def test_the_other_filters(client: TestClient) -> None:
    assert ids(cases(client, "as_of=2021-06-30&district=620103")) == [C]
    assert ids(cases(client, "as_of=2021-06-30&department=finance")) == [B]
    assert ids(cases(client, "as_of=2021-06-30&rule=lagging")) == [B]
    assert ids(cases(client, "as_of=2021-06-30&from=2021-03-02&to=2021-03-04")) == [C]
    assert ids(cases(client, "as_of=2021-06-30&from=2021-03-02")) == [C, B]
    assert ids(cases(client, "")) == [A, C, B]  # today: every case
    for bad in ("status=late", "district=999999", "department=nobody", "from=2021-02-30", "as_of=1989-01-01"):
        answer = client.get(f"/v1/supervision?{bad}", headers=SUPERVISOR)
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_request", bad
    assert client.get("/v1/supervision").status_code == 401


def test_a_case_and_its_messages_in_order(client: TestClient) -> None:
    answer = client.get(f"/v1/supervision/{A}?as_of=2021-04-10", headers=SUPERVISOR)
    assert answer.status_code == 200, answer.text
    case = answer.json()
    CaseResponse.model_validate(case)
    assert (case["case_id"], case["status"], case["demand"], case["note"], case["outcome"]) == (
        A, "closed", "限期开工", "已开工", "rectified")
    assert [(m["kind"], m["day"], m["department"], m["user"], m["message_id"]) for m in case["messages"]] == [
        ("assigned", "2021-03-01", "supervision_office", "li.si", "m-a1"),
        ("responded", "2021-03-10", "industry_it", "li.si", "m-a2"),
        ("closed", "2021-04-01", "supervision_office", "li.si", "m-a3")]
    assigned, responded, closed = case["messages"]
    assert (assigned["rule"], assigned["responsible"], assigned["due_date"], assigned["demand"]) == (
        "not_started", "industry_it", "2021-03-15", "限期开工")
    assert (responded["measures"], responded["expected_by"]) == ("已落实施工队伍", "2021-03-30")
    assert (closed["outcome"], closed["note"]) == ("rectified", "已开工")
    earlier = client.get(f"/v1/supervision/{A}?as_of=2021-03-05", headers=SUPERVISOR).json()
    assert (earlier["status"], earlier["responses"], earlier["closed_on"]) == ("open", 0, None)
    assert len(earlier["messages"]) == 3  # the messages are the case's whole record


def test_an_unknown_case_is_a_404_problem(client: TestClient) -> None:
    answer = client.get("/v1/supervision/DB-NONE", headers=SUPERVISOR)
    assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "unknown_case" and "DB-NONE" in answer.json()["detail"]
    assert client.get("/v1/supervision/%01", headers=SUPERVISOR).status_code == 400


def test_the_list_downloads_as_csv_and_xlsx(client: TestClient) -> None:
    rows = cases(client, "as_of=2021-04-10")
    for lang in ("zh", "en"):
        answer = client.get(f"/v1/supervision?as_of=2021-04-10&format=csv&lang={lang}", headers=SUPERVISOR)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        header, *lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert header == [c.header(lang) for c in LISTING.columns]
        assert [line[0] for line in lines] == ids(rows)
    assert {"督办编号", "反馈期限", "销号结果", "办理天数", "督办逾期"} <= set(header_zh := [c.header("zh") for c in LISTING.columns])
    answer = client.get("/v1/supervision?as_of=2021-04-10&format=xlsx", headers=SUPERVISOR)
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
    # Under the title block (issue 22): title, 截至 and 编制单位, filters, a blank row, then the header.
    title, _dated, _filters, _blank, header, *lines = [[c.value for c in row] for row in sheet.iter_rows()]
    assert title[0] == LISTING.zh and header == header_zh and len(lines) == len(rows)
    closed = next(line for line in lines if line[0] == A)
    assert "整改到位" in closed and "已销号" in closed and closed[header.index("销号日期")] == datetime(2021, 4, 1)


def test_the_ledger_shows_disbursed_approved_and_unsupplied_as_of_a_day(client: TestClient) -> None:
    def rows(query: str) -> dict[str, dict[str, Any]]:
        answer = client.get(f"/v1/ledger?year=2021&district=620102&{query}", headers=SUPERVISOR)
        assert answer.status_code == 200, answer.text
        schemas.LedgerResponse.model_validate(answer.json())
        return {r["factor"]: r for r in answer.json()["rows"]}

    march = rows("as_of=2021-03-31")
    assert (march["funds"]["granted"], march["funds"]["disbursed"], march["funds"]["idle"]) == (500, 200, 0)
    assert (march["land"]["approved"], march["land"]["unsupplied"], march["land"]["idle"]) == (100, 70, 0)
    assert march["funds"]["approved"] is None and march["land"]["disbursed"] is None
    february = rows("as_of=2021-02-15")
    # The funds were granted on 1 March (issue 22: grants are as of the day too): none in February.
    assert "funds" not in february and february["land"]["unsupplied"] == 100  # drawn on 1 March
    assert "land" not in rows("as_of=2021-01-31")  # approved on 1 February: no land in the district before
    header = next(csv.reader(io.StringIO(client.get("/v1/ledger?year=2021&format=csv", headers=SUPERVISOR)
                                         .content.decode("utf-8-sig"))))
    assert {"已拨付", "沉淀数量", "已批复", "批而未供"} <= set(header)


def test_the_console_lists_cases_and_shows_a_case_s_timeline(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/console/supervision?as_of=2021-04-10")
    assert page.status_code == 200 and "督办" in page.text
    for case in (A, B, C):
        assert f'href="/console/supervision/{case}?as_of=2021-04-10"' in page.text
    assert "已销号" in page.text and "督办逾期" in page.text and "城关区" in page.text and "按责任部门" in page.text
    assert 'href="/v1/supervision?' in page.text and "format=xlsx" in page.text
    overdue = client.get("/console/supervision?as_of=2021-04-10&status=overdue").text
    assert f"/console/supervision/{B}" in overdue and f"/console/supervision/{A}?" not in overdue
    timeline = client.get(f"/console/supervision/{A}?as_of=2021-04-10")
    assert timeline.status_code == 200
    text = timeline.text
    steps = text[text.index('class="timeline"'):]
    assert steps.index("<strong>交办") < steps.index("<strong>反馈") < steps.index("<strong>销号")
    assert "限期开工" in steps and "已落实施工队伍" in steps
    assert "整改到位" in text and f'href="/console/projects/{CODE}"' in text
    assert client.get("/console/supervision/DB-NONE").status_code == 404
    project = client.get(f"/console/projects/{CODE}").text
    assert f'href="/console/supervision/{A}"' in project and f'href="/console/supervision/{B}"' in project
    shown = {path: english_on(client.get(path).text) for path in (
        "/console/supervision?as_of=2021-04-10", f"/console/supervision/{A}?as_of=2021-04-10",
        f"/console/supervision/{C}", f"/console/projects/{CODE}", "/console/ledger?year=2021&as_of=2021-03-31")}
    assert not any(shown.values()), shown  # Chinese to the last word
    english = client.get("/console/lang/en?next=/console/supervision", follow_redirects=True)
    assert english.status_code == 200 and "Supervision cases" in english.text
