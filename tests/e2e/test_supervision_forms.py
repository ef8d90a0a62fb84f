"""The console's supervision forms (督办: 交办 → 反馈 → 销号) over HTTP, on both stores: who is offered
them, what guards them (CSRF), and a message the rules refuse shown in Chinese with what was typed kept.

What needs the supervision handlers (a case assigned, answered and closed) is walked in
tests/e2e/test_supervision_walk.py."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from markupsafe import escape

from api.console.casework import DUE_IN, alert_action, assignment_from
from infra.clock import city_today
from infra.settings import Settings
from infra.tokens import Principal
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import LOCAL, submit
from tests.console import csrf_of, sign_in
from tests.portal import CODE, FACTOR_MESSAGES, admitted, msg
from tests.readmodels import served

OFFICE = "dev-supervision_office"
AS_OF = "2021-09-30"  # CODE, planned to start on 2021-04-01, funded and not started, is late: not_started


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    ledger = build_ledger(settings)
    sender, funds = FACTOR_MESSAGES["funds.allocated"]
    assert {r.status for r in submit(ledger, *admitted(CODE, "annual"), msg("funds.allocated", funds, dept=sender))} \
        == {"accepted"}
    with served(ledger, settings) as test:
        yield test


def ledger_of(client: TestClient) -> Ledger:
    return client.app.state.ledger  # type: ignore[attr-defined,no-any-return]


def assignment(**changes: str) -> dict[str, str]:
    """An assignment as the form sends it, from the alert of CODE."""
    return {"project_code": CODE, "rule": "not_started", "grant_id": "", "responsible": "industry_it",
            "due_date": (city_today() + DUE_IN).isoformat(), "demand": "请于十五日内反馈开工计划", "case_id": "",
            **changes}


def post_form(client: TestClient, path: str, fields: dict[str, str], **headers: str) -> Any:
    """Send a form as a page of this console does: with the session's form token."""
    csrf = csrf_of(client.get("/console/alerts").text)
    return client.post(path, data={**fields, "csrf": csrf}, headers=headers, follow_redirects=False)


def rejected_bodies(ledger: Ledger) -> list[dict[str, Any]]:
    return [orjson.loads(item.event.body) for item in ledger.rejections(0, 1000).items]


# --- who is offered the forms ------------------------------------------------------------------


@pytest.mark.parametrize("token", [OFFICE, "dev-development_reform"])
def test_an_assigning_department_is_offered_to_assign_each_alert(client: TestClient, token: str) -> None:
    sign_in(client, token)
    page = client.get(f"/console/alerts?as_of={AS_OF}").text
    assert "交办" in page
    links = [html.unescape(part.split('"', 1)[0]) for part in page.split('class="button assign" href="')[1:]]
    assert {urlsplit(link).path for link in links} == {"/console/supervision/assign"}
    offered = [{k: v[0] for k, v in parse_qs(urlsplit(link).query).items()} for link in links]
    # The project's two alerts: its start (not_started) and the money not paid out (funds_idle, of its grant).
    (link,) = [link for link, proposed in zip(links, offered) if proposed["rule"] == "not_started"]
    assert {"rule": "not_started", "project_code": CODE, "responsible": "industry_it",
            "due_date": (city_today() + timedelta(days=15)).isoformat()} in offered
    assert any(p["rule"] == "funds_idle" and p.get("grant_id") for p in offered)
    form = client.get(link)
    assert form.status_code == 200 and "交办督办事项" in form.text
    assert f'name="project_code" value="{CODE}"' in form.text
    assert '<option value="industry_it" selected>' in form.text and '<option value="not_started" selected>' in form.text
    assert f'name="due_date" value="{(city_today() + timedelta(days=15)).isoformat()}"' in form.text


@pytest.mark.parametrize("token", ["dev-supervisor", "dev-admin", "dev-finance", "dev-industry_it"])
def test_other_tokens_are_not_offered_the_assign_form(client: TestClient, token: str) -> None:
    sign_in(client, token)
    alerts = client.get(f"/console/alerts?as_of={AS_OF}").text
    assert "预警" in alerts and "/console/supervision/assign" not in alerts
    page = client.get(f"/console/supervision/assign?project_code={CODE}&rule=not_started")
    assert 'action="/console/supervision/assign"' not in page.text
    no_department = token in ("dev-supervisor", "dev-admin")
    assert ("此令牌不代表任何部门" if no_department else "本部门无权提交此表单") in page.text


def test_an_alert_with_an_open_case_links_to_it_and_an_approval_alert_offers_nothing() -> None:
    """What each alert's row offers, from the alert as the API gives it (v1.2: `case_id`, and an
    approval's alert without a project)."""
    today = city_today()
    office, finance = Principal("so", "portal", "supervision_office"), Principal("f", "portal", "finance")
    alert = {"project_code": CODE, "rule": "land_idle", "grant_id": "nr-0001", "department": "industry_it",
             "case_id": None}
    assert alert_action(alert, office, today) == ("assign", "/console/supervision/assign?project_code="
                                                  f"{CODE}&rule=land_idle&grant_id=nr-0001&responsible=industry_it"
                                                  f"&due_date={(today + DUE_IN).isoformat()}")
    assert alert_action(alert, finance, today) is None
    assert alert_action({**alert, "case_id": "DB-2026/1"}, finance, today) == ("case", "/console/supervision/DB-2026%2F1")
    assert assignment_from({**alert, "project_code": None, "subject": "PZ-2024-01"}, today) is None
    # A grant's rule names its grant in `ref` too: an alert that does not say `grant_id` still proposes it.
    assert assignment_from({**alert, "grant_id": None, "ref": "nr-0002"}, today)["grant_id"] == "nr-0002"  # type: ignore[index]
    assert assignment_from({**alert, "rule": "not_started", "grant_id": None, "ref": "2021-04-01"}, today)[  # type: ignore[index]
        "grant_id"] == ""


# --- what guards them ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/console/supervision/assign", "/console/supervision/DB-2026-0001/respond",
                                  "/console/supervision/DB-2026-0001/close"])
@pytest.mark.parametrize("headers", [{"origin": "http://evil.example"}, {"origin": "http://localhost:9999"},
                                     {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}])
def test_a_form_from_another_origin_is_refused_and_nothing_is_stored(client: TestClient, path: str,
                                                                      headers: dict[str, str]) -> None:
    ledger = ledger_of(client)
    sign_in(client, OFFICE)
    head = ledger.head()
    answer = post_form(client, path, assignment(), **headers)
    assert answer.status_code == 403 and "拒绝" in answer.text
    assert ledger.head() == head  # not even a rejection: the message was never made


@pytest.mark.parametrize("path", ["/console/supervision/assign", "/console/supervision/DB-2026-0001/respond",
                                  "/console/supervision/DB-2026-0001/close"])
def test_a_form_without_this_sessions_token_is_refused(client: TestClient, path: str) -> None:
    ledger = ledger_of(client)
    sign_in(client, OFFICE)
    head = ledger.head()
    for sent in ({}, {"csrf": "x" * 43}):
        answer = client.post(path, data={**assignment(), **sent}, follow_redirects=False)
        assert answer.status_code == 403 and "拒绝" in answer.text
    other = TestClient(client.app, base_url=LOCAL)  # another browser's session: its token is not this one's
    sign_in(other, OFFICE)
    stolen = csrf_of(other.get("/console/alerts").text)
    assert client.post(path, data={**assignment(), "csrf": stolen}, follow_redirects=False).status_code == 403
    assert ledger.head() == head


def test_a_form_sent_without_a_session_goes_to_sign_in(client: TestClient) -> None:
    answer = client.post("/console/supervision/assign", data=assignment(), follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login")


# --- what the rules say, on the page ---------------------------------------------------------------


def test_a_department_that_does_not_assign_is_refused_by_the_rules_and_told_so(client: TestClient) -> None:
    ledger = ledger_of(client)
    sign_in(client, "dev-finance")
    answer = post_form(client, "/console/supervision/assign", assignment())
    assert answer.status_code == 403
    assert "未予受理" in answer.text and "无权" in answer.text  # rejection.forbidden, in Chinese
    assert "forbidden" not in answer.text.replace('class="chip red"', "")  # the code by its name, not as a code
    (kept,) = rejected_bodies(ledger)  # refused by the pipeline, and kept like any portal's refusal
    assert kept["type"] == "supervision.assigned" and kept["actor"] == {"department": "finance",
                                                                       "user": "finance-portal"}
    (item,) = ledger.rejections(0, 10).items
    assert item.event.code == "forbidden" and item.event.channel == "http"
    assert item.event.submitted_by == "portal:finance-portal"


def test_a_refusal_is_said_in_chinese_and_what_was_typed_is_kept(client: TestClient) -> None:
    ledger = ledger_of(client)
    sign_in(client, OFFICE)
    typed = assignment(due_date="2026-02-30", demand="请于十五日内\r\n反馈 <b>开工计划</b>", case_id="DB-2026-0001")
    answer = post_form(client, "/console/supervision/assign", typed)
    assert answer.status_code == 422
    assert "未予受理" in answer.text and "格式或取值错误" in answer.text  # rejection.invalid, in Chinese
    assert "payload.due_date：须为 ISO 日期" in answer.text  # the reason, in Chinese
    assert 'value="2026-02-30"' in answer.text and 'value="DB-2026-0001"' in answer.text
    assert ">请于十五日内\n反馈 &lt;b&gt;开工计划&lt;/b&gt;</textarea>" in answer.text  # as typed, as text
    assert f'name="project_code" value="{CODE}"' in answer.text
    (kept,) = rejected_bodies(ledger)
    assert kept["message_id"].startswith("console-") and kept["source"] == "console"
    assert kept["actor"] == {"department": "supervision_office", "user": "supervision_office-portal"}
    assert kept["project_code"] == CODE and kept["occurred_at"][10] == "T" and kept["occurred_at"].endswith("+08:00")
    assert kept["payload"] == {"case_id": "DB-2026-0001", "rule": "not_started", "responsible": "industry_it",
                               "due_date": "2026-02-30", "demand": "请于十五日内\n反馈 <b>开工计划</b>"}
    again = post_form(client, "/console/supervision/assign", typed)
    assert again.status_code == 422
    assert len({body["message_id"] for body in rejected_bodies(ledger)}) == 2  # each sending its own message


def test_an_assignment_naming_no_case_number_is_given_one(client: TestClient) -> None:
    sign_in(client, OFFICE)
    post_form(client, "/console/supervision/assign", assignment(due_date="soon"))
    (kept,) = rejected_bodies(ledger_of(client))
    case_id = kept["payload"]["case_id"]
    assert case_id.startswith(f"DB-{city_today().year}-") and len(case_id) == len("DB-2026-") + 8
    assert "grant_id" not in kept["payload"]  # left empty: the case is about the project


def test_a_token_of_no_department_sends_nothing(client: TestClient) -> None:
    ledger = ledger_of(client)
    for token in ("dev-supervisor", "dev-admin"):
        sign_in(client, token)
        head = ledger.head()
        answer = post_form(client, "/console/supervision/assign", assignment())
        assert answer.status_code == 403 and "此令牌不代表任何部门" in answer.text
        assert ledger.head() == head


@pytest.mark.parametrize("form", ["respond", "close"])
def test_a_case_that_does_not_exist_has_no_form(client: TestClient, form: str) -> None:
    ledger = ledger_of(client)
    sign_in(client, OFFICE)
    head = ledger.head()
    assert client.get(f"/console/supervision/DB-1999-0001/{form}").status_code == 404
    answer = post_form(client, f"/console/supervision/DB-1999-0001/{form}",
                       {"measures": "m", "expected_by": "2026-12-31", "outcome": "waived", "note": "n"})
    assert answer.status_code == 404 and ledger.head() == head


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(typed=st.text(max_size=300))
def test_whatever_is_typed_comes_back_as_text_and_is_kept_with_the_refusal(client: TestClient, typed: str) -> None:
    """No text makes the form fail: refused (here for its date), the page shows it again as typed (a
    browser's CR LF as a newline), escaped, and the message kept says it the same way."""
    ledger = ledger_of(client)
    sign_in(client, OFFICE)
    before = len(ledger.rejections(0, 1000).items)
    answer = post_form(client, "/console/supervision/assign", assignment(due_date="2026-02-30", demand=typed))
    assert answer.status_code == 422 and "未予受理" in answer.text
    expected = typed.replace("\r\n", "\n").replace("\r", "\n").strip()
    assert "\r" not in expected
    assert f">{escape(expected)}</textarea>" in answer.text
    kept = rejected_bodies(ledger)
    assert len(kept) == before + 1 and kept[-1]["payload"]["demand"] == expected
