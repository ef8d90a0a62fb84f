"""The console in a real browser (Debian's Chromium, driven by Playwright), against a real `yaosu serve`.

A supervisor's morning: sign in, the overview, from a red alert to its project, the project on another
day, what changed between two dates, English, an export to Excel read back, sign out. Screenshots of
each page go to var/screenshots/.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

import openpyxl
import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.test_server import serving, yaosu
from tests.portal import admitted

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = f"sqlite:///{tmp_path_factory.mktemp('console') / 'console.db'}"
    loaded = yaosu("demo", "--year", "2021", "--projects", "60", store=store)
    assert loaded.returncode == 0, loaded.stderr
    hostile = tmp_path_factory.mktemp("hostile") / "hostile.jsonl"
    import orjson

    hostile.write_bytes(b"\n".join(orjson.dumps(m) for n, name in enumerate(HOSTILE)
                                   for m in admitted(f"2021-620102-48-01-88800{n}", "annual", name=name)))
    assert yaosu("load", str(hostile), store=store).returncode == 0
    with serving(store) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True, locale="zh-CN")
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert not dialogs, f"a script ran: {dialogs}"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, url: str, then: str = "/console") -> None:
    page.goto(f"{url}{then}")
    assert "/console/login" in page.url
    shot(page, "login")
    page.fill("input[name=token]", "dev-supervisor")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{then}")


def test_a_supervisors_morning(page: Page, console: str) -> None:
    sign_in(page, console, "/console?as_of=2021-09-30&year=2021")
    assert page.title().endswith("要素保障监管台") and page.locator("svg.chart").count() >= 5
    shot(page, "overview")

    page.goto(f"{console}/console/alerts?as_of=2021-09-30&level=red")
    shot(page, "alerts")
    red = page.locator("tr.red a[href^='/console/projects/']").first
    code = red.inner_text()
    red.click()
    page.wait_for_url(f"**/console/projects/{code}**")
    assert code in page.locator("h1").inner_text()
    shot(page, "project")

    page.fill("input[name=as_of]", "2021-07-01")  # every demo project is registered by then
    page.locator("form.filters button").first.click()
    page.wait_for_url("**as_of=2021-07-01**")
    assert "2021-07-01" in page.locator(".stateline").inner_text()
    page.fill("input[name=from]", "2021-07-01")
    page.fill("input[name=to]", "2021-09-30")
    page.locator("#compare button").click()
    page.wait_for_url("**to=2021-09-30**")
    assert page.locator("ul.changes li").count() >= 1
    shot(page, "project-compare")

    page.click("text=English")
    page.wait_for_url(f"**/console/projects/{code}**")
    assert "Audit trail" in page.content() and page.locator("html").get_attribute("lang") == "en"
    shot(page, "project-en")

    page.goto(f"{console}/console/alerts?as_of=2021-09-30")
    with page.expect_download() as downloaded:
        page.click("a.export")
    sheet = openpyxl.load_workbook(io.BytesIO(Path(downloaded.value.path()).read_bytes())).active
    # Under its title block (title, 截至 and 编制单位, filters, a blank row): every alert, not only the page's.
    listed = int("".join(ch for ch in page.locator("p.pager span").first.inner_text() if ch.isdigit()))
    assert sheet is not None and sheet.max_row == 5 + listed >= 5 + page.locator("table.data tbody tr").count()
    assert sheet.freeze_panes == "A6" and sheet.cell(1, 1).value == sheet.title  # titled (in English now)

    page.goto(f"{console}/console?as_of=2021-09-30&year=2021")
    page.fill("input[name=month]", "2021-09")
    with page.expect_download() as downloaded:
        page.click("button.export")
    report = openpyxl.load_workbook(io.BytesIO(Path(downloaded.value.path()).read_bytes()))
    assert report.sheetnames == ["Overview", "5. District ranking", "6. Alerts", "7. Factor ledger",
                                 "8. Warnings"]  # in English now

    page.goto(f"{console}/console/audit")  # everything recorded about the project, each row leading back to it
    page.fill("input[name=project]", code)
    page.locator("form.filters button").first.click()
    page.wait_for_url(f"**project={code}**")
    links = page.locator("table.data tbody a[href^='/console/projects/']")
    assert links.count() >= 3 and {links.nth(i).inner_text() for i in range(links.count())} == {code}
    shot(page, "audit")
    links.first.click()
    page.wait_for_url(f"**/console/projects/{code}**")

    for path in ("/console/libraries/municipal", "/console/ledger?year=2021",
                 "/console/rankings?year=2021&as_of=2021-09-30&factor=land&total=3000", "/console/warnings",
                 "/console/rejections", "/console/health"):
        page.goto(f"{console}{path}")
        assert page.locator("main h1").count() == 1, path
        shot(page, path.split("?")[0].rsplit("/", 1)[-1] or "overview")

    page.click("header form[action='/console/logout'] button")  # sign out (the header also has the search form)
    page.wait_for_url("**/console/login")
    page.goto(f"{console}/console")
    assert "/console/login" in page.url


def test_markup_in_a_name_stays_text_and_nothing_runs(page: Page, console: str) -> None:
    sign_in(page, console)
    for n, name in enumerate(HOSTILE):
        for path in (f"/console/projects/2021-620102-48-01-88800{n}", "/console/libraries/annual?district=620102"):
            page.goto(f"{console}{path}")
            assert name in page.locator("main").inner_text(), path  # shown, as text
            assert page.locator("main img[src=x]").count() == 0 and page.locator("main script").count() == 0
    policy: dict[str, Any] = {}
    page.on("response", lambda r: policy.update(csp=r.headers.get("content-security-policy")) if "/console/" in r.url
            and r.request.resource_type == "document" else None)
    page.goto(f"{console}/console/libraries/annual")
    assert policy["csp"].startswith("default-src 'none'") and "script-src" not in policy["csp"]
