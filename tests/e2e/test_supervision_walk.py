"""A supervision case (督办) walked through the console's forms, from a red `land_idle` alert to the case
closed after the land was reclaimed: over HTTP on both stores, then in a real browser (Debian's
Chromium, driven by Playwright) against a real `yaosu serve`.

These need the supervision handlers and pages of contract v1.2 (the rules of `supervision.*`, the
factor-level alerts, the case page `/console/supervision/{case_id}` with the forms of
api/console/templates/supervision_forms.html in it): they pass once the branches are merged. The forms'
guards and a refusal's display are tested on their own in tests/e2e/test_supervision_forms.py.

The data is built through `POST /v1/messages`, dated from today: land supplied 800 days ago to be
built on within 30 days and never built on, so its `land_idle` alert is red (and reclaimable) today.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page

from api.app import create_app
from domain.reference import CITY_TZ
from infra.catalogue import name_of
from infra.clock import city_today
from infra.settings import Settings
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import LOCAL
from tests.console import csrf_of, sign_in
from tests.e2e.test_server import serving
from tests.portal import admitted, land_quota, msg

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
CODE = "2021-620102-48-01-000321"  # industry_it's project (tests.portal.REGISTRATION), district 620102
GRANT = "walk-land-1"
OFFICE, RESPONSIBLE, REFORM = "dev-supervision_office", "dev-industry_it", "dev-development_reform"
ADMIN = {"Authorization": "Bearer dev-admin"}


def supplied_on() -> date:
    return city_today() - timedelta(days=800)


def setup_messages() -> list[dict[str, Any]]:
    """A project in the annual plan of the year its land was supplied, with a land quota that year; the
    land to be built on 30 days after it was supplied, and never built on."""
    day = supplied_on()
    at = f"{day.isoformat()}T09:00:00+08:00"
    return [*admitted(CODE, "annual"), msg("project.admitted", {"library": "annual", "year": day.year}, code=CODE, at=at),
            land_quota(1000, year=day.year),
            msg("land.supplied", {"parcel": "LZ-WALK-1", "area_mu": 50, "method": "transfer",
                                  "start_by": (day + timedelta(days=30)).isoformat()},
                code=CODE, dept="natural_resources", at=at, mid=GRANT)]


def reclaim_message() -> dict[str, Any]:
    """Development and reform takes the idle land back (a grant an open case names, contract v1.2)."""
    return msg("factor.reclaimed", {"factor": "land", "grant_id": GRANT, "reason": "土地闲置满两年，依法收回"},
               code=CODE, dept="development_reform", at=datetime.now(CITY_TZ).isoformat(timespec="seconds"))


# --- over HTTP, on both stores ------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    ledger = build_ledger(settings)
    try:
        with TestClient(create_app(ledger, settings), base_url=LOCAL) as test:
            answer = test.post("/v1/messages", json=setup_messages(), headers=ADMIN)
            assert {r["status"] for r in answer.json()["results"]} == {"accepted"}, answer.json()
            yield test
    finally:
        ledger.close()


def ledger_of(client: TestClient) -> Ledger:
    return client.app.state.ledger  # type: ignore[attr-defined,no-any-return]


def post_form(client: TestClient, path: str, fields: dict[str, str]) -> Any:
    csrf = csrf_of(client.get("/console/rejections").text)
    return client.post(path, data={**fields, "csrf": csrf}, follow_redirects=False)


def assignment(**changes: str) -> dict[str, str]:
    return {"project_code": CODE, "rule": "land_idle", "grant_id": GRANT, "responsible": "industry_it",
            "due_date": (city_today() + timedelta(days=15)).isoformat(), "demand": "请说明闲置原因并限期动工",
            "case_id": "", **changes}


def refused_with(answer: Any, code: str) -> None:
    """The page says the rejection by its name in Chinese (the catalogue's), never as the code."""
    name = name_of("rejection", code, "zh")
    assert name != code and "未予受理" in answer.text and name in answer.text, answer.text[-2000:]


def test_a_case_assigned_answered_and_closed_through_the_forms(client: TestClient) -> None:
    ledger = ledger_of(client)
    sign_in(client, OFFICE)
    assigned = post_form(client, "/console/supervision/assign", assignment(case_id="DB-2026-0001"))
    assert assigned.status_code == 303 and assigned.headers["location"] == "/console/supervision/DB-2026-0001"
    case = ledger.project(CODE).cases["DB-2026-0001"]  # type: ignore[union-attr]
    assert (case["rule"], case["grant_id"], case["responsible"], case["assigned_by"]) == \
        ("land_idle", GRANT, "industry_it", "supervision_office")
    event = ledger.history(CODE)[-1].event
    assert event.audit.source == "console" and event.audit.user == "supervision_office-portal"
    assert event.audit.message_id.startswith("console-")

    again = post_form(client, "/console/supervision/assign", assignment())  # one open case per project, rule, grant
    refused_with(again, "invalid_state")
    assert ">请说明闲置原因并限期动工</textarea>" in again.text

    sign_in(client, "dev-finance")  # not the case's responsible department
    wrong = post_form(client, "/console/supervision/DB-2026-0001/respond",
                      {"measures": "已约谈", "expected_by": (city_today() + timedelta(days=30)).isoformat()})
    assert wrong.status_code == 403
    refused_with(wrong, "forbidden")

    sign_in(client, RESPONSIBLE)
    measures = "已约谈企业，\r\n限期三十日内动工"
    answered = post_form(client, "/console/supervision/DB-2026-0001/respond",
                         {"measures": measures, "expected_by": (city_today() + timedelta(days=30)).isoformat()})
    assert answered.status_code == 303 and answered.headers["location"] == "/console/supervision/DB-2026-0001"
    (response,) = ledger.project(CODE).cases["DB-2026-0001"]["responses"]  # type: ignore[union-attr]
    assert response["measures"] == "已约谈企业，\n限期三十日内动工"  # a browser's CR LF, as a newline

    sign_in(client, OFFICE)
    early = post_form(client, "/console/supervision/DB-2026-0001/close", {"outcome": "reclaimed", "note": "已收回"})
    refused_with(early, "not_cleared")  # nothing reclaimed yet
    assert ">已收回</textarea>" in early.text and '<option value="reclaimed" selected>' in early.text

    reclaimed = client.post("/v1/messages", json=reclaim_message(), headers={"Authorization": f"Bearer {REFORM}"})
    assert reclaimed.json()["results"][0]["status"] == "accepted", reclaimed.json()

    closed = post_form(client, "/console/supervision/DB-2026-0001/close", {"outcome": "reclaimed", "note": "已收回"})
    assert closed.status_code == 303 and closed.headers["location"] == "/console/supervision/DB-2026-0001"
    case = ledger.project(CODE).cases["DB-2026-0001"]  # type: ignore[union-attr]
    assert case["outcome"] == "reclaimed" and case["closed_on"] == city_today()


def test_an_assignment_for_a_project_that_does_not_exist_is_refused_in_chinese(client: TestClient) -> None:
    sign_in(client, OFFICE)
    answer = post_form(client, "/console/supervision/assign", assignment(project_code="2021-620102-48-01-999999"))
    assert answer.status_code == 422
    refused_with(answer, "unknown_project")
    assert 'value="2021-620102-48-01-999999"' in answer.text  # as typed


def test_an_assignment_without_its_alert_is_refused_in_chinese(client: TestClient) -> None:
    sign_in(client, OFFICE)
    answer = post_form(client, "/console/supervision/assign", assignment(rule="funds_idle", grant_id=""))
    refused_with(answer, "not_alerted")


# --- in a browser, against `yaosu serve` -----------------------------------------------------------


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = f"sqlite:///{tmp_path_factory.mktemp('walk') / 'walk.db'}"
    with serving(store) as url:
        answer = httpx.post(f"{url}/v1/messages", json=setup_messages(), headers=ADMIN, timeout=30)
        assert {r["status"] for r in answer.json()["results"]} == {"accepted"}, answer.json()
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert not dialogs, f"a script ran: {dialogs}"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"supervision-{name}.png"), full_page=True)


def sign_in_as(page: Page, url: str, token: str, then: str) -> None:
    """Sign out whoever is signed in, then sign in with `token` on the way to `then`."""
    if page.locator("header form[action='/console/logout'] button").count():
        page.click("header form[action='/console/logout'] button")
        page.wait_for_url("**/console/login")
    page.goto(f"{url}{then}")
    assert "/console/login" in page.url
    page.fill("input[name=token]", token)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{then}")


def open_alert(page: Page, url: str) -> None:
    """The alerts page, once the read models have seen the data (bounded wait: they follow the log)."""
    target = page.locator(f"tr.red a.assign[href*='project_code={CODE}'][href*='rule=land_idle']")
    for _ in range(60):
        page.goto(f"{url}/console/alerts?level=red")
        if target.count():
            return
        page.wait_for_timeout(500)
    pytest.fail("no red land_idle alert with 交办 on the alerts page within 30 s")


def test_from_a_red_land_idle_alert_to_a_case_closed_after_the_reclaim(page: Page, console: str) -> None:
    sign_in_as(page, console, OFFICE, "/console/alerts?level=red")
    open_alert(page, console)
    shot(page, "alerts")
    page.locator(f"tr.red a.assign[href*='project_code={CODE}'][href*='rule=land_idle']").first.click()
    page.wait_for_url("**/console/supervision/assign?**")
    form = page.locator("form.supervision.assign")
    assert form.locator("input[name=project_code]").input_value() == CODE
    assert form.locator("select[name=rule]").input_value() == "land_idle"
    assert form.locator("input[name=grant_id]").input_value() == GRANT
    responsible = form.locator("select[name=responsible]").input_value()
    assert responsible == "industry_it"  # the project's department, proposed
    assert form.locator("input[name=due_date]").input_value() == (city_today() + timedelta(days=15)).isoformat()
    form.locator("textarea[name=demand]").fill("请说明土地闲置原因，十五日内反馈整改措施")
    shot(page, "assign")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/console/supervision/[^/?]+$"))
    case_id = unquote(urlsplit(page.url).path.rsplit("/", 1)[1])
    case_path = f"/console/supervision/{case_id}"
    shot(page, "assigned")

    sign_in_as(page, console, f"dev-{responsible}", case_path)
    answer = page.locator("form.supervision.respond")
    answer.locator("textarea[name=measures]").fill("已约谈企业，限期三十日内动工")
    answer.locator("input[name=expected_by]").fill((city_today() + timedelta(days=30)).isoformat())
    answer.locator("button[type=submit]").click()
    page.wait_for_url(f"**{case_path}")
    assert "已约谈企业，限期三十日内动工" in page.locator("main").inner_text()
    assert page.locator("form.supervision.close").count() == 0  # the responsible department does not close it
    shot(page, "responded")

    # The development and reform commission takes the land back (over its portal: the console has no such form).
    reclaimed = httpx.post(f"{console}/v1/messages", json=reclaim_message(),
                           headers={"Authorization": f"Bearer {REFORM}"}, timeout=30)
    assert reclaimed.json()["results"][0]["status"] == "accepted", reclaimed.json()

    sign_in_as(page, console, OFFICE, case_path)
    closing = page.locator("form.supervision.close")
    closing.locator("select[name=outcome]").select_option("reclaimed")
    closing.locator("textarea[name=note]").fill("闲置土地已依法收回，予以销号")
    closing.locator("button[type=submit]").click()
    page.wait_for_url(f"**{case_path}")
    shown = ""
    for _ in range(60):  # the case page reads a read model: it follows the log
        shown = page.locator("main").inner_text()
        if "闲置土地已依法收回，予以销号" in shown:
            break
        page.wait_for_timeout(500)
        page.reload()
    shot(page, "closed")
    assert "闲置土地已依法收回，予以销号" in shown, shown
    timeline = page.locator("ol.timeline li .what strong")  # the case page's timeline, in order
    assert [timeline.nth(i).inner_text() for i in range(timeline.count())] == ["交办", "反馈", "销号"], shown
    assert page.locator("form.supervision").count() == 0  # a closed case offers no form
