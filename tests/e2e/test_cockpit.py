"""The overview as a cockpit (驾驶舱), over HTTP on both stores and in Chromium at 1440 and 390 px.

Every card is as of the page's day: its figures are those of the projects as they stood then (replayed from
their histories, the slow reference), the trends count what the alerts list shows at each month's end, the
map colours each area by the alerts of the day, and every mark leads to a list that answers.
"""

from __future__ import annotations

import html
import re
from datetime import date
from decimal import Decimal
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from api.app import create_app
from api.console.cockpit import PLACES, figure, month_days
from domain import reference
from infra.catalogue import name_of
from infra.settings import Settings
from projections.read import ReadModels
from projections.runner import Runner
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import submit
from tests.console import sign_in
from tests.e2e.test_console_browser import SHOTS
from tests.e2e.test_server import serving, yaosu
from tests.portal import CODE, admitted, land_quota, msg
from tests.readmodels import demo_store, project_codes

#: Days of the demo year: before most projects start, and late in the year.
EARLY, LATE = date(2021, 3, 31), date(2021, 11, 30)


@pytest.fixture
def cockpit(settings: Settings) -> Iterator[tuple[TestClient, Ledger]]:
    with demo_store(settings, projects=30) as (ledger, reads):
        with TestClient(create_app(ledger, settings, reads), base_url="https://localhost") as client:
            sign_in(client)
            yield client, ledger


def section(page: str, name: str) -> str:
    found = re.search(rf'<section class="card[^"]*" id="{name}">(.*?)</section>', page, re.S)
    assert found, f"no card {name}"
    return found.group(1)


def table(card: str) -> list[list[str]]:
    """The rows of a card's table of numbers, as text."""
    body = re.search(r"<tbody>(.*?)</tbody>", card, re.S)
    assert body, "no table of numbers"
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)]


def figures(page: str) -> dict[str, str]:
    """The key figures' tiles: their label → the figure shown."""
    tiles = re.findall(r'<span class="what">(.*?)</span>\s*<span class="amount"><b>(.*?)</b>', page, re.S)
    return {html.unescape(label): html.unescape(value) for label, value in tiles}


def at(day: str) -> str:
    return f"{day}T09:00:00+08:00"


def whole(text: str) -> int:
    return int(text.replace(",", ""))


def test_every_card_is_as_of_the_day(cockpit: tuple[TestClient, Ledger]) -> None:
    """Issue 22: at as_of=…-03-31 the stage and library cards showed today's projects (one registered in
    November among them). Now they count the projects as their histories stood at the end of that day."""
    client, ledger = cockpit
    codes = project_codes(ledger)
    seen = {}
    for day in (EARLY, LATE):
        page = client.get(f"/console?as_of={day}&year=2021").text
        states = [s for s in (ledger.project(code, day) for code in codes) if s is not None]
        live = [s for s in states if s.cancelled_on is None]
        stages = {label: whole(n) for label, n in table(section(page, "stages"))}
        assert stages == {name_of("stage", s): sum(1 for p in live if p.stage == s) for s in reference.STAGES}, day
        libraries = {label: whole(n) for label, n in table(section(page, "libraries"))}
        expected = {name_of("library", lib): sum(1 for p in states if lib in p.libraries) for lib in reference.LIBRARIES}
        assert libraries == {k: v for k, v in expected.items() if v}, day
        shown = figures(page)
        assert whole(shown["项目数"]) == len(live)
        invested = sum((p.total_investment for p in live), Decimal(0))  # as amended by then
        assert shown["总投资"] == figure(invested / 10_000, 2)
        started = sum(1 for p in live if p.started_on is not None and p.started_on <= day)
        assert shown["开工率"] == (f"{started / len(live) * 100:,.1f}%" if live else "—")
        seen[day] = stages
    assert seen[EARLY] != seen[LATE], "the demo's projects advance between March and November"


def test_trends_map_and_tiles_agree_with_the_alerts_list(cockpit: tuple[TestClient, Ledger]) -> None:
    """The alerts at each month's end are those the alerts list shows on that day; each area's tile is red,
    yellow or green (no alert) by the alerts of the day and leads to them; every mark leads to a list that
    answers."""
    client, _ = cockpit
    page = client.get(f"/console?as_of={LATE}&year=2021").text
    trend = table(section(page, "alert-trend"))
    assert [row[0] for row in trend] == [d.isoformat() for d in month_days(2021, LATE)]
    for day, red, yellow in trend:
        listed = client.get(f"/v1/alerts?as_of={day}").json()["alerts"]
        assert (whole(red), whole(yellow)) == (sum(a["level"] == "red" for a in listed),
                                               sum(a["level"] == "yellow" for a in listed)), day
    today = client.get(f"/v1/alerts?as_of={LATE}").json()["alerts"]
    tiles = re.findall(r'<a href="([^"]+)"><g class="tile (\w+)">', section(page, "map"))
    assert len(tiles) == len(PLACES) == len(reference.DISTRICTS) == 13
    for href, level in tiles:
        district = re.search(r"district=(\d+)", href).group(1)  # type: ignore[union-attr]
        levels = {a["level"] for a in today if a["district"] == district}
        assert level == ("red" if "red" in levels else "yellow" if "yellow" in levels else "green"), district
    assert whole(figures(page)["红色预警"]) == sum(a["level"] == "red" for a in today)
    links = set(re.findall(r'href="(/console[^"#]*)"', page)) - {"/console"}
    assert len(links) > 30
    for link in sorted(links):
        assert client.get(html.unescape(link)).status_code == 200, link


def test_ranking_bars_begin_near_the_lowest_score(cockpit: tuple[TestClient, Ledger]) -> None:
    """Issue 22: bars from zero made 88 and 98 look alike. The axis begins below the lowest score, labelled."""
    client, _ = cockpit
    page = client.get(f"/console?as_of={LATE}&year=2021").text
    card = section(page, "ranking")
    scores = [float(s) for s in re.findall(r'<text class="value"[^>]*>([\d.]+)</text>', card)]
    start = re.search(r'<text class="axis"[^>]*>坐标轴起点 ([\d.,]+)</text>', card)
    assert scores and start, "the ranking and where its axis starts"
    assert 0 <= float(start.group(1)) <= min(scores)
    assert "E+" not in page and "e+" not in page


def test_a_plan_year_not_begun_has_no_trend(cockpit: tuple[TestClient, Ledger]) -> None:
    client, _ = cockpit
    page = client.get(f"/console?as_of={LATE}&year=2022").text
    assert "该日计划年度尚未开始。" in section(page, "alert-trend")


# --- in Chromium ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = f"sqlite:///{tmp_path_factory.mktemp('cockpit') / 'cockpit.db'}"
    loaded = yaosu("demo", "--year", "2021", "--projects", "60", store=store)
    assert loaded.returncode == 0, loaded.stderr
    with serving(store) as url:
        yield url


TEXT_SIZES = """() => [...document.querySelectorAll('svg.chart text')].map(t => {
    const m = t.getScreenCTM(); return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b); })"""


@pytest.mark.parametrize("width", [1440, 390])
def test_the_cockpit_reads_on_a_wide_screen_and_a_phone(browser: Browser, served: str, width: int) -> None:
    """Chart text was about 8 px: every chart's text is now at least 12 px on screen, the page no wider than
    the screen, and a tile of the map leads to that area's alerts of the day."""
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{served}/console/login")
        page.fill("input[name=token]", "dev-supervisor")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{served}/console?as_of=2021-11-30&year=2021")
        assert page.locator("svg.chart").count() >= 8 and page.locator("svg.map g.tile").count() == 13
        sizes: list[float] = page.evaluate(TEXT_SIZES)
        assert sizes and min(sizes) >= 12, f"chart text of {min(sizes):.1f} px at {width} px"
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"cockpit-{width}.png"), full_page=True)
        tile = page.locator("svg.map a").first
        href: Any = tile.get_attribute("href")
        tile.click()
        page.wait_for_url("**/console/alerts?**")
        assert "district=" in href and "as_of=2021-11-30" in page.url
    finally:
        context.close()


def test_a_projects_story_in_the_cockpit(settings: Settings) -> None:
    """One project's year, each change counted from its business day, however late recorded: a stage from the
    day it advanced, an amended total investment from the amendment, land in use from the day construction
    started (recorded three weeks later), funds in use as disbursed."""
    ledger = build_ledger(settings)
    try:
        allocation = msg("funds.allocated", {"source": "own_funds", "amount": 1000,
                                             "document": "兰财建〔2021〕1号"}, dept="finance", at=at("2021-03-05"))
        stories = [
            land_quota(1500),
            *admitted(CODE, "annual"),
            msg("stage.advanced", {"stage": "generation"}, at=at("2021-02-01")),
            msg("land.supplied", {"parcel": "CG-2021-001", "area_mu": 45, "method": "allocation"},
                dept="natural_resources", at=at("2021-03-01")),
            allocation,
            msg("stage.advanced", {"stage": "approval"}, at=at("2021-04-01")),
            msg("funds.disbursed", {"grant_id": allocation["message_id"], "amount": 400, "date": "2021-04-10"},
                dept="finance", at=at("2021-04-10")),
            msg("project.amended", {"total_investment": 15000, "reason": "概算调整"}, at=at("2021-05-01")),
            msg("construction.started", {"date": "2021-06-01"}, at=at("2021-06-20")),
        ]
        results = submit(ledger, *stories)
        assert [(r.status, r.reason) for r in results if r.status != "accepted"] == []
        runner = Runner(ledger, settings)
        runner.run_until_caught_up()
        runner.close()
        reads = ReadModels(settings)
        try:
            with TestClient(create_app(ledger, settings, reads), base_url="https://localhost") as client:
                sign_in(client)
                march, may, june = (client.get(f"/console?as_of={d}&year=2021").text
                                    for d in ("2021-03-31", "2021-05-31", "2021-06-30"))
        finally:
            reads.close()
    finally:
        ledger.close()
    stage = {page: {label: whole(n) for label, n in table(section(page, "stages")) if whole(n)}
             for page in (march, may, june)}
    assert stage == {march: {"项目生成": 1}, may: {"项目审批": 1}, june: {"项目审批": 1}}
    assert [figures(page)["总投资"] for page in (march, may)] == ["1.20", "1.50"]
    assert [figures(page)["开工率"] for page in (march, may, june)] == ["0.0%", "0.0%", "100.0%"]
    in_use = {page: {row[0]: row[2:] for row in table(section(page, "usage-trend"))} for page in (march, june)}
    assert in_use[march]["土地"][-1] == "0 / 45" and in_use[june]["土地"][-1] == "45 / 45"
    assert in_use[june]["资金"][-1] == "400 / 1,000"
