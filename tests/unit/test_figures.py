"""Figures as Chinese reports write them (issue 22): one function per kind of figure (infra/figures.py),
used by the console's tables and the downloads alike; the console's lists sorted and paged by the
listing machinery; the issuer of the downloads a checked setting."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api import exports
from api.console import tables
from api.console.i18n import environment
from infra import figures
from infra.settings import DEFAULT_ISSUER, Settings
from projections import factor_ledger, sedimentation
from projections.listing import Column, Order, in_order

#: A number in exponent notation (`2E+4`, `1.07e4`), not a run of hex digits (the audit chain's hashes).
EXPONENT = re.compile(r"(?<![0-9A-Za-z.])\d+(?:\.\d+)?[eE][+-]?\d+(?![0-9A-Za-z])")
FIGURES = st.one_of(st.integers(-10**15, 10**15), st.decimals(allow_nan=False, allow_infinity=False, places=4,
                                                             min_value=-10**12, max_value=10**12),
                    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
                    st.sampled_from([Decimal("2E+4"), Decimal("1.07E+4"), Decimal("1E+8"), 1e16, 2e4]))


@given(FIGURES, st.integers(0, 3))
def test_an_amount_is_grouped_never_in_exponents(value: Any, places: int) -> None:
    shown = figures.grouped(value, places)
    assert not EXPONENT.search(shown) and "E" not in shown
    assert re.fullmatch(r"-?\d{1,3}(,\d{3})*(\.\d+)?", shown), shown
    exact = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
    assert Decimal(shown.replace(",", "")) == (exact if exact != 0 else 0)
    assert len(shown.partition(".")[2]) == places


def test_the_figures_of_the_issue() -> None:
    assert [figures.grouped(Decimal("2E+4")), figures.grouped(Decimal("1.07E+4"), 1)] == ["20,000", "10,700.0"]
    assert [figures.percent(0.853), figures.percent(Decimal("1.015")), figures.percent(None)] == ["85.3%", "101.5%", "—"]
    assert figures.percent_of(0.8534) == Decimal("85.3")
    assert [figures.money(9999, "zh"), figures.money(12345, "zh"), figures.money(Decimal("1234567.8"), "en")] == [
        "9,999 万元", "1.23 亿元", "123.46 100M yuan"]
    assert [figures.with_unit(Decimal("1385.5"), "land", "zh"), figures.with_unit(4400, "energy", "zh")] == [
        "1,385.5 亩", "4,400.0 吨标煤"]
    # A counted factor (data, talent, utilities) has no quantity: never "0.0".
    assert [figures.quantity(0, "data"), figures.with_unit(None, "talent", "zh"), figures.grouped(-0.04, 1)] == [
        "—", "—", "0.0"]


def test_headers_carry_their_unit_in_full_width_brackets_and_rates_their_percent() -> None:
    money, rate = Column("total", "总投资", "Total investment", "money"), Column("r", "开工率", "Start rate", "rate")
    assert [money.header("zh"), money.header("en")] == ["总投资（万元）", "Total investment (10k yuan)"]
    assert [rate.header("zh"), rate.header("en")] == ["开工率（%）", "Start rate (%)"]
    assert rate.value({"r": 0.8534}, "zh") == Decimal("85.3")  # the download's number, its header says %


def test_the_ledger_shows_no_quantity_of_a_counted_factor() -> None:
    row = {"district": "620102", "year": 2026, "factor": "data", "unit": None, "quota": None, "grants": 23,
           "granted": 0, "exempt": 0, "reclaimed": 0, "remaining": None}
    land = {**row, "factor": "land", "unit": "land", "granted": Decimal("1385.5"), "quota": 2000}
    shown = tables.table(factor_ledger.LISTING, [row, land], "zh")
    cells = [{h.label: c.text for h, c in zip(shown.headers, r.cells)} for r in shown.rows]
    assert [cells[0]["已供给"], cells[0]["供给笔数"], cells[1]["已供给"], cells[1]["年度指标"]] == [
        None, "23", "1,385.5", "2,000.0"]
    granted = factor_ledger.LISTING.column("granted")
    assert [granted.value(row, "zh"), granted.value(land, "zh")] == [None, Decimal("1385.5")]


def test_a_plain_table_of_the_overview_writes_figures_as_reports_do() -> None:
    """The overview's data tables showed `2E+4` and `1.07E+4` (a Decimal printed as it is)."""
    html = environment("zh").from_string('{% from "macros.html" import data_table %}{{ data_table(h, rows) }}').render(
        h=["区县", "指标"], rows=[("城关区", Decimal("2E+4")), ("七里河区", Decimal("1.07E+4")), ("西固区", 3)])
    assert not EXPONENT.search(html) and "20,000" in html and "10,700" in html and '<td class="n">3</td>' in html


def test_a_download_names_its_filters_and_its_issuer() -> None:
    asked = {"as_of": date(2026, 12, 3), "district": "620102", "level": "red", "rule": None}
    assert exports.filters_applied(sedimentation.ALERTS, asked, "zh") == ["区县＝城关区", "预警等级＝红色"]
    block = exports.heading("要素沉淀预警", "zh", DEFAULT_ISSUER, date(2026, 12, 3), ["区县＝城关区"])
    assert block.lines == ("截至日期：2026-12-03　编制单位：兰州市发展和改革委员会", "筛选条件：区县＝城关区")
    assert exports.heading("Alerts", "en", "X", date(2026, 12, 3)).lines[1] == "Filters: All"
    assert exports.dated_on(sedimentation.ALERTS, asked) == date(2026, 12, 3)


@pytest.mark.parametrize("value", ["", "   ", "兰州\n发改委", "x" * 101])
def test_the_issuer_is_one_line_and_not_empty(value: str) -> None:
    with pytest.raises(ValueError, match="YAOSU_ISSUER"):
        Settings.from_env({"YAOSU_ISSUER": value})
    assert Settings.from_env({}).issuer == DEFAULT_ISSUER == "兰州市发展和改革委员会"
    assert Settings.from_env({"YAOSU_ISSUER": " 兰州新区经济发展局 "}).issuer == "兰州新区经济发展局"


@given(st.dictionaries(st.sampled_from(["sort", "order", "page", "district"]), st.text(max_size=12)))
def test_any_query_reads_as_an_order(query: dict[str, str]) -> None:
    """The console's sort and page are read leniently: anything else is the list's own order, page 1."""
    order = sedimentation.ALERTS.ordering(query)
    assert order.sort is None or order.sort in sedimentation.ALERTS.sortable
    assert order.page >= 1 and order.size == 100 and (order.descending is False or order.sort is not None)


@given(st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=30), st.booleans())
def test_a_list_sorts_stably_with_nothing_last(values: list[int | None], descending: bool) -> None:
    rows = [{"n": i, "v": v} for i, v in enumerate(values)]
    found = in_order(rows, Order("v", descending))
    given_ = [r["v"] for r in found if r["v"] is not None]
    assert given_ == sorted(given_, reverse=descending)
    assert [r["v"] for r in found[len(given_):]] == [None] * (len(values) - len(given_))
    for a, b in zip(found, found[1:]):  # ties keep the list's own order
        if a["v"] == b["v"]:
            assert a["n"] < b["n"]


def test_a_page_of_a_list_links_its_neighbours_and_its_sorts() -> None:
    rows = [{"project_code": f"2026-620102-44-01-{n:06d}", "district": "620102", "level": "red", "rule": "lagging",
             "since": date(2026, 11, 1)} for n in range(250)]
    found, paged = tables.paginated(sedimentation.ALERTS, rows, {"sort": "project_code", "order": "desc", "page": "2",
                                                                 "level": "red"}, "/console/alerts")
    assert [r["project_code"][-3:] for r in (found[0], found[-1])] == ["149", "050"] and len(found) == 100
    shown = tables.table(sedimentation.ALERTS, found, "zh", paged=paged)
    assert shown.pager == tables.Pager(250, 2, 3, "/console/alerts?level=red&sort=project_code&order=desc&page=1",
                                       "/console/alerts?level=red&sort=project_code&order=desc&page=3")
    code = next(h for h in shown.headers if h.label == "项目代码")
    assert code.sorted == "desc" and code.link == "/console/alerts?level=red&sort=project_code"
