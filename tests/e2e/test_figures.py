"""Figures, lists and the phone (issue 22), in Debian's Chromium against a served demo: no figure in
exponents or as a bare fraction, no quantity of a counted factor, every long list sorted and paged by
its headers, and no page wider than a 390 px phone."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page

from api.console.pages import NAVIGATION
from tests.e2e.test_console_browser import SHOTS, console, sign_in  # noqa: F401 - the served demo, loaded once

#: A number in exponent notation (`2E+4`, `1.07e4`), not a run of hex digits (the audit chain's hashes).
EXPONENT = re.compile(r"(?<![0-9A-Za-z.])\d+(?:\.\d+)?[eE][+-]?\d+(?![0-9A-Za-z])")
PHONE = 390
#: The counted factors' names in the ledger: their quantities are none (—), never 0.0.
COUNTED = ("数据", "人才", "水电气暖")


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": PHONE, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, locale="zh-CN")
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def desk(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    opened = context.new_page()
    yield opened
    context.close()


def every_page(page: Page, url: str) -> list[str]:
    """Every console page a supervisor reaches: the navigation's, a project, a case, the lists sorted."""
    page.goto(f"{url}/console/alerts?as_of=2021-09-30")
    project = page.locator("table.data a[href^='/console/projects/']").first.get_attribute("href")
    page.goto(f"{url}/console/supervision?as_of=2021-12-31")
    case = page.locator("table.data a[href^='/console/supervision/']")
    pages = [href for _, href in NAVIGATION] + [str(project), "/console?as_of=2021-09-30&year=2021",
                                               "/console/ledger?year=2021", "/console/rankings?year=2021&as_of=2021-09-30",
                                               "/console/alerts?as_of=2021-09-30&sort=district&order=desc",
                                               "/console/audit?sort=recorded_at&order=desc&page=2"]
    return pages + ([str(case.first.get_attribute("href"))] if case.count() else [])


def test_no_figure_is_written_in_exponents_or_as_a_fraction(desk: Page, console: str) -> None:  # noqa: F811
    sign_in(desk, console)
    for path in every_page(desk, console):
        desk.goto(f"{console}{path}")
        text = desk.locator("main").inner_text()
        assert not EXPONENT.search(text), (path, EXPONENT.search(text))
    desk.goto(f"{console}/console/rankings?year=2021&as_of=2021-09-30")
    rates = desk.locator("table.data tbody tr td:nth-child(8)").all_inner_texts()
    assert rates and all(re.fullmatch(r"\d{1,3}(,\d{3})*\.\d%", r) for r in rates), rates
    assert re.fullmatch(r"\d{1,3}(,\d{3})*", desk.locator("table.data tbody tr td:nth-child(6)").first.inner_text())
    assert "（万元）" in desk.locator("table.data thead").inner_text()  # full-width brackets in Chinese
    desk.goto(f"{console}/console/ledger?year=2021")
    rows = [r.split("\t") for r in desk.locator("table.data tbody tr").all_inner_texts()]
    counted = [r for r in rows if r[1] in COUNTED]
    assert counted and all(cell.strip() == "—" for r in counted for cell in r[5:]), counted[:2]
    assert all(r[2] == "—" for r in counted)  # no unit either: they are counted, by their grants
    desk.screenshot(path=str(SHOTS / "figures-ledger-1440.png"))


def test_a_long_list_sorts_by_its_headers_and_pages(desk: Page, console: str) -> None:  # noqa: F811
    sign_in(desk, console, "/console/audit")
    pager = desk.locator("p.pager")
    count = int(pager.locator("span").first.inner_text().replace(",", "").strip("共 条"))
    assert count > 200 and "第 1 / " in pager.inner_text() and pager.locator("text=上一页").count() == 0
    desk.locator("table.data thead a", has_text="记录时间").click()
    desk.wait_for_url("**sort=recorded_at**")
    desk.locator("table.data thead a", has_text="记录时间").click()  # again: the other way
    desk.wait_for_url("**order=desc**")
    first = desk.locator("table.data tbody tr").all_inner_texts()
    pager.locator("text=下一页").click()
    desk.wait_for_url("**page=2**")
    second = desk.locator("table.data tbody tr").all_inner_texts()
    assert "第 2 / " in desk.locator("p.pager").inner_text() and desk.locator("p.pager >> text=上一页").count() == 1
    column = [h.strip(" ▲▼") for h in desk.locator("table.data thead th").all_inner_texts()].index("记录时间")
    times = [r.split("\t")[column] for r in first + second]
    assert times == sorted(times, reverse=True) and not set(first) & set(second)
    desk.screenshot(path=str(SHOTS / "lists-audit-sorted-1440.png"))

    desk.goto(f"{console}/console/alerts?as_of=2021-09-30")
    desk.locator("table.data thead a", has_text="区县").first.click()
    desk.wait_for_url("**sort=district**")
    column = [h.strip(" ▲▼") for h in desk.locator("table.data thead th").all_inner_texts()].index("区县")
    assert "▲" in desk.locator("table.data thead th").nth(column).inner_text()
    codes = [a.get_attribute("href") for a in desk.locator("table.data tbody tr").all()]
    assert codes and "共" in desk.locator("p.pager").inner_text()


def test_the_warnings_and_the_audit_sort_by_the_project_name(desk: Page, console: str) -> None:  # noqa: F811
    """项目名称 is looked up after the read (the lists keep codes): sorting by it sorts by the name, not by the
    list's own order, and rows about no project come last."""
    sign_in(desk, console)
    for path in ("/console/warnings", "/console/audit"):
        desk.goto(f"{console}{path}")
        desk.locator("table.data thead a", has_text="项目名称").first.click()
        desk.wait_for_url("**sort=**_name**")
        headers = [h.strip(" ▲▼") for h in desk.locator("table.data thead th").all_inner_texts()]
        column = headers.index("项目名称")
        names = [r.split("\t")[column].strip() for r in desk.locator("table.data tbody tr").all_inner_texts()]
        given = [n for n in names if n not in ("", "—")]
        assert len(set(given)) > 1, (path, names[:5])
        assert given == sorted(given) and names[:len(given)] == given, (path, names[:20])
        assert "▲" in desk.locator("table.data thead th").nth(column).inner_text()


def test_no_page_is_wider_than_a_phone(phone: Page, console: str) -> None:  # noqa: F811
    sign_in(phone, console)
    for path in every_page(phone, console):
        phone.goto(f"{console}{path}")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE, (path, width)
        assert phone.evaluate("document.body.scrollWidth") <= PHONE, path
    for path, name in (("/console?as_of=2021-09-30&year=2021", "overview"), ("/console/alerts?as_of=2021-09-30", "alerts"),
                       ("/console/ledger?year=2021", "ledger"), ("/console/audit", "audit")):
        phone.goto(f"{console}{path}")
        phone.screenshot(path=str(SHOTS / f"phone-{name}-390.png"))
    phone.goto(f"{console}/console/login")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE


def test_the_ledger_is_as_of_its_date(console: str) -> None:  # noqa: F811
    """截至 applies to the ledger's grants too (issue 22: the monthly report's ledger was today's): granted
    by a day is the sum of the grants (not exempt) made by its end, per district and factor."""
    supervisor = {"Authorization": "Bearer dev-supervisor"}
    codes = [p["code"] for s in httpx.get(f"{console}/v1/stages", headers=supervisor).json()["stages"]
             for p in s["projects"]]
    grants = [g for code in codes for g in httpx.get(f"{console}/v1/ledger?project={code}", headers=supervisor,
                                                     timeout=30).json()["grants"]]
    for day in ("2021-03-31", "2021-06-30", "2021-12-31"):
        expected: dict[tuple[str, str], Decimal] = {}
        for g in grants:
            if g["granted_on"] <= day and g["year"] == 2021 and not g["exempt"] and g["quantity"] is not None:
                key = (g["district"], g["factor"])
                expected[key] = expected.get(key, Decimal(0)) + Decimal(str(g["quantity"]))
        rows = httpx.get(f"{console}/v1/ledger?year=2021&as_of={day}", headers=supervisor).json()["rows"]
        found = {(r["district"], r["factor"]): Decimal(str(r["granted"])) for r in rows
                 if r["factor"] in ("funds", "land", "energy", "emission") and r["granted"]}
        assert found == {k: v for k, v in expected.items() if k[1] in ("funds", "land", "energy", "emission") and v}, day
    early = httpx.get(f"{console}/v1/ledger?year=2021&as_of=2021-03-31", headers=supervisor).json()["rows"]
    late = httpx.get(f"{console}/v1/ledger?year=2021&as_of=2021-12-31", headers=supervisor).json()["rows"]
    assert sum(r["grants"] for r in early) < sum(r["grants"] for r in late)
