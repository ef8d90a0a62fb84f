"""Projects by name (issue 22): the alerts, warnings and audit lists (API, download, console) name each
project; the console finds a project by a part of its name, owner or code from a box on every page; a
project's page shows its alerts and cases on its day and its factors with units; codes are shown by
their names (sector headers, kinds of data, a rejected message's fields). Over HTTP on both stores,
then in a real browser (Debian's Chromium) against a served demo.
"""

from __future__ import annotations

import csv
import io
import re
from html import escape
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page

from api.app import create_app
from api.console.finding import PAYLOAD, TOO_LONG
from infra.catalogue import name_of, said, translations
from infra.settings import Settings
from tests.conftest import LOCAL, fresh_store
from tests.console import sign_in
from tests.e2e.test_console_browser import console  # noqa: F401 - the served demo, a fixture
from tests.readmodels import demo_store

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
AS_OF = "2021-09-30"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A demo year of 30 projects with its read models caught up, signed in as a supervisor."""
    pg = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    settings = Settings(store=fresh_store(request.param, tmp_path_factory.mktemp("names"), pg))
    with demo_store(settings, projects=30) as (ledger, reads), \
            TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as test:
        sign_in(test)
        yield test


def get(client: TestClient, path: str) -> Any:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.text[:500])
    return answer.json()


def names_of(client: TestClient) -> dict[str, str]:
    """Every project's name as registered, by code (from the stage board)."""
    return {p["code"]: p["name"] for s in get(client, "/v1/stages")["stages"] for p in s["projects"]}


def html(client: TestClient, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, (path, answer.status_code)
    return answer.text


# --- names in the lists ------------------------------------------------------------------------


def test_alerts_name_their_projects_in_the_api_the_download_and_the_console(client: TestClient) -> None:
    names = names_of(client)
    alerts = get(client, f"/v1/alerts?as_of={AS_OF}")["alerts"]
    assert [a for a in alerts if a["project_code"]], "the demo has project alerts on the day"
    assert all(a["project_name"] == (names[a["project_code"]] if a["project_code"] else None) for a in alerts)
    schema = get(client, "/openapi.json")["components"]["schemas"]["AlertItem"]["properties"]
    assert "project_name" in schema and "project_code" in schema  # the old field is kept beside it

    text = client.get(f"/v1/alerts?as_of={AS_OF}&format=csv&lang=zh").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = next(n for n, row in enumerate(rows) if "项目代码" in row)
    code_at, name_at = rows[header].index("项目代码"), rows[header].index("项目名称")
    downloaded = [row for row in rows[header + 1:] if len(row) > name_at and row[code_at] in names]
    assert len(downloaded) == len([a for a in alerts if a["project_code"]])
    assert all(row[name_at] == names[row[code_at]] for row in downloaded)

    page = html(client, f"/console/alerts?as_of={AS_OF}")
    assert re.search(r"<th[^>]*>(?:<a [^>]*>)?项目名称(?:</a>)?</th>", page)
    assert all(escape(names[a["project_code"]]) in page for a in alerts if a["project_code"])


def test_warnings_and_the_audit_name_their_projects(client: TestClient) -> None:
    names = names_of(client)
    warnings = get(client, "/v1/warnings?limit=1000")["warnings"]
    assert [w for w in warnings if w["project_code"]], "the demo has warnings about projects"
    assert all(w["project_name"] == (names[w["project_code"]] if w["project_code"] else None) for w in warnings)
    page = html(client, "/console/warnings")
    assert all(escape(names[w["project_code"]]) in page for w in warnings if w["project_code"])

    code = next(iter(names))
    entries = get(client, f"/v1/audit?project={code}&limit=1000")["entries"]
    assert entries and all(e["subject_name"] == names[code] for e in entries)
    others = get(client, "/v1/audit?limit=1000")["entries"]
    assert all(e["subject_name"] == names.get(e["subject"]) for e in others)  # none for a reduction, a district
    assert any(e["subject_name"] is None for e in others) and any(e["subject_name"] for e in others)
    assert escape(names[code]) in html(client, f"/console/audit?project={code}")
    # On the console: a district it was about by its name, who submitted it in words (the API keeps both as stored).
    district = next(e for e in others if e["subject"] == e["district"] != "620100")
    page = html(client, f"/console/audit?district={district['district']}&type={district['type']}")
    assert cell(name_of("district", district["district"], "zh")) in cells(page)
    assert cell(district["district"]) not in cells(page)
    assert district["submitted_by"] == "admin:test" and "admin:test" not in page and "test（管理员）" in page


def cells(page: str) -> list[str]:
    """A page's table cells, as text (whatever their classes)."""
    return [re.sub(r"<[^>]+>", "", found) for found in re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)]


def cell(text: str) -> str:
    return str(escape(text))


# --- search ------------------------------------------------------------------------------------


def test_a_project_is_found_by_a_part_of_its_code_name_or_owner(client: TestClient) -> None:
    names = names_of(client)
    code, name = sorted(names.items())[7]
    owner = get(client, f"/v1/projects/{code}")["owner"]
    for query in (code[-6:], name[1:-1], owner):
        page = html(client, f"/console/search?q={query}")
        assert f'<a class="name" href="/console/projects/{code}">{escape(name)}</a>' in page, query
    by_code = html(client, f"/console/search?q={code[-6:]}")
    state = get(client, f"/v1/projects/{code}")
    assert "共1个项目符合" in by_code and name_of("district", state["district"], "zh") in by_code
    assert name_of("stage", state["stage"], "zh") in by_code
    # Full-width digits, as a Chinese input method types them, find the same project.
    wide = html(client, f"/console/search?q={code[-6:].translate(str.maketrans('0123456789', '０１２３４５６７８９'))}")
    assert "共1个项目符合" in wide and f'<a class="name" href="/console/projects/{code}">{escape(name)}</a>' in wide
    assert "没有项目的名称、项目单位或代码包含此内容" in html(client, "/console/search?q=%25%25%25")
    refused = html(client, f"/console/search?q={'医' * 51}", status=400)
    assert TOO_LONG in refused and "最多50个字符" in refused


def test_every_page_has_the_search_box(client: TestClient) -> None:
    code = next(iter(names_of(client)))
    for path in ("/console", "/console/alerts", f"/console/projects/{code}", "/console/libraries/municipal",
                 "/console/rejections", "/console/search"):
        page = html(client, path)
        assert re.search(r'<form class="search" method="get" action="/console/search" role="search">'
                         r'<input type="search" name="q"', page), path
    assert 'value="城关"' in html(client, "/console/search?q=城关")  # the box keeps what was asked
    client.cookies.set("yaosu_lang", "en")
    try:
        assert re.search(r"\d+ projects match “城关”", html(client, "/console/search?q=城关"))
    finally:
        client.cookies.delete("yaosu_lang")


# --- the project page ----------------------------------------------------------------------------


def test_a_projects_page_shows_its_alerts_and_cases_on_its_day(client: TestClient) -> None:
    alerts = get(client, f"/v1/alerts?as_of={AS_OF}")["alerts"]
    code = next(a["project_code"] for a in alerts if a["project_code"])
    mine = [a for a in alerts if a["project_code"] == code]
    page = html(client, f"/console/projects/{code}?as_of={AS_OF}")
    section = page[page.index('id="alerts"'):page.index('id="cases"')]
    assert f"截至 {AS_OF}" in section
    for alert in mine:
        assert escape(said(alert["detail_code"], alert["detail_params"], "zh")) in section
        assert name_of("rule", alert["rule"], "zh") in section
    assert section.count('<tr class="red">') + section.count('<tr class="yellow">') == len(mine)

    cases = get(client, "/v1/supervision?as_of=2021-12-31")["cases"]
    assert cases, "the demo has supervision cases"
    case = cases[0]
    status = next(c for c in get(client, f"/v1/supervision?as_of={case['assigned_on']}")["cases"]
                  if c["case_id"] == case["case_id"])["status"]
    on_its_day = html(client, f"/console/projects/{case['project_code']}?as_of={case['assigned_on']}")
    listed = on_its_day[on_its_day.index('id="cases"'):on_its_day.index('id="compare"')]
    assert case["case_id"] in listed and f'<span class="chip {status}">{name_of("case_status", status, "zh")}</span>' in listed
    assert name_of("rule", case["rule"], "zh") in listed
    before = html(client, f"/console/projects/{case['project_code']}?as_of=2021-01-31")
    assert case["case_id"] not in before[before.index('id="cases"'):before.index('id="compare"')]


def test_a_projects_factors_are_shown_with_units_and_names(client: TestClient) -> None:
    built = next(s for s in get(client, "/v1/stages")["stages"] if s["stage"] == "construction")["projects"]
    code = next(p["code"] for p in built if get(client, f"/v1/projects/{p['code']}")["factors"]["data"])
    state = get(client, f"/v1/projects/{code}")
    page = html(client, f"/console/projects/{code}")
    grants = page[page.index("已保障要素"):page.index('id="cases"')]
    assert "planning_data" not in page and "规划数据" in grants
    assert state["factors"]["funds"] and state["factors"]["utilities"]
    for grant in state["factors"]["funds"]:
        assert f"{float(grant['quantity']):,.0f} 万元" in grants
    for grant in state["factors"]["land"]:
        assert f"{float(grant['quantity']):,.1f} 亩" in grants
    for factor in ("data", "utilities", "talent"):  # counted, not measured: an empty quantity, never "0.0"
        for _ in state["factors"][factor]:
            assert re.search(rf'<td>{name_of("factor", factor, "zh")}</td><td>[^<]*</td><td class="whole">[^<]*</td>'
                             r'<td class="n amount"></td>', grants), factor
    assert "本阶段所需要素：" in page and ": " not in re.sub(r"<[^>]+>", "", grants)


# --- codes by their names ------------------------------------------------------------------------


def test_the_library_matrix_heads_its_sectors_by_name(client: TestClient) -> None:
    page = html(client, "/console/libraries/municipal")
    matrix = page[page.index('<table class="matrix">'):page.index("</thead>", page.index('<table class="matrix">'))]
    sectors = re.findall(r'<th class="sector" title="([A-T])">([^<]+)</th>', matrix)
    assert sectors and all(name == name_of("sector", letter, "zh") for letter, name in sectors)
    assert not re.search(r">[A-T]</th>", matrix)


def test_a_rejected_message_reads_as_fields(client: TestClient) -> None:
    names = names_of(client)
    rejections = get(client, "/v1/rejections?limit=1000")["rejections"]
    page = html(client, "/console/rejections")
    assert "{&#39;message_id&#39;" not in page and "{'message_id'" not in page  # no Python dict dump
    about = [r for r in rejections[:100] if r["subject"] in names]
    assert about, "the demo has rejected messages about registered projects"
    for r in about:
        assert f'<a href="/console/projects/{r["subject"]}">{escape(names[r["subject"]])}（{r["subject"]}）</a>' in page
    payload = next(r for r in rejections[:100] if isinstance(r["body"], dict) and r["body"].get("payload"))
    for key in payload["body"]["payload"]:
        label = translations("zh").gettext(PAYLOAD[key][0]) if key in PAYLOAD else key
        assert f"<dt>{escape(label)}</dt>" in page or f"<dt><code>{escape(key)}</code></dt>" in page, key


def test_every_payload_field_is_labelled_in_chinese() -> None:
    chinese = re.compile(r"[\u4e00-\u9fff]")
    assert all(chinese.search(translations("zh").gettext(label)) for label, _ in PAYLOAD.values())


# --- in a browser ----------------------------------------------------------------------------------


def sign_in_page(page: Page, url: str) -> None:
    page.goto(f"{url}/console/login")
    page.fill("input[name=token]", "dev-supervisor")
    page.click("main button[type=submit]")
    page.wait_for_url("**/console")


@pytest.mark.parametrize("width", [1440, 390])
def test_a_supervisor_finds_a_project_from_the_header(browser: Browser, console: str, width: int) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        sign_in_page(page, console)
        alerts = page.request.get(f"{console}/v1/alerts?as_of={AS_OF}").json()["alerts"]
        alert = next(a for a in alerts if a["project_code"])
        code, name = alert["project_code"], alert["project_name"]
        page.fill("header form.search input[name=q]", code[-6:])
        page.press("header form.search input[name=q]", "Enter")
        page.wait_for_url("**/console/search?q=*")
        assert page.locator("main ul.found li").count() == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"search-{width}.png"), full_page=True)
        page.click(f"main a:has-text('{name}')")
        page.wait_for_url(f"**/console/projects/{code}")
        page.goto(f"{console}/console/projects/{code}?as_of={AS_OF}")
        rows = page.locator("#alerts table.data tbody tr")
        assert rows.count() >= 1 and name in page.locator("h1").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(SHOTS / f"project-names-{width}.png"), full_page=True)
    finally:
        context.close()
