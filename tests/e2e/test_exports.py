"""Downloads of the lists and the monthly report, read back as Excel users open them: CSV through the
csv module, XLSX through openpyxl, each compared with the JSON answer of the same request."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Iterator
from urllib.parse import unquote

import openpyxl
import pytest
import schemathesis
from fastapi.testclient import TestClient

from api import exports
from api.app import create_app
from domain.reference import CITY_TZ
from infra.catalogue import name_of, said
from infra.clock import city_today
from infra.settings import Settings
from projections.runner import Runner
from tests.conftest import LOCAL, serving_testserver
from tests.portal import register
from tests.readmodels import demo_store

SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}
ADMIN = {"Authorization": "Bearer dev-admin"}
BOM = b"\xef\xbb\xbf"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UNITS = {"funds": ("万元", "10k yuan"), "land": ("亩", "mu"), "energy": ("吨标煤", "tce"), "emission": ("吨", "t"),
         "special_bond": ("万元", "10k yuan")}
MONEY = "#,##0.00"
#: The header row of a downloaded sheet: under the title block (title, 截至 and 编制单位, filters, a blank row).
TOP = 5


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with demo_store(settings, projects=60) as (ledger, reads), TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as test:
        yield test


def construction_project(client: TestClient) -> str:
    board = get(client, "/v1/stages?stage=construction").json()
    return board["stages"][0]["projects"][0]["code"]  # type: ignore[no-any-return]


#: Each list: its path, its rows in the JSON answer, the listing, and headers it must show.
LISTS: dict[str, tuple[str, Any, exports.Listing, dict[str, str]]] = {
    "library": ("/v1/libraries/municipal", lambda b: b["members"], exports.LIBRARY,
                {"项目代码": "Project code", "总投资（万元）": "Total investment (10k yuan)", "区县": "District"}),
    "stages": ("/v1/stages", lambda b: [{**p, "stage": s["stage"]} for s in b["stages"] for p in s["projects"]], exports.STAGES,
               {"阶段": "Stage", "缺少要素": "Factors missing"}),
    "alerts": ("/v1/alerts?as_of=2021-09-30", lambda b: b["alerts"], exports.ALERTS,
               {"预警等级": "Level", "包抓领导": "Responsible leader"}),
    "ledger": ("/v1/ledger?year=2021", lambda b: b["rows"], exports.LEDGER,
               {"年度指标": "Quota", "单位": "Unit", "剩余指标": "Remaining"}),
    "grants": ("/v1/ledger?project={code}", lambda b: b["grants"], exports.GRANTS,
               {"供给日期": "Granted on", "豁免": "Exempt"}),
    "ranking": ("/v1/rankings/districts?year=2021&as_of=2021-09-30", lambda b: b["districts"], exports.RANKING,
                {"名次": "Rank", "年度计划投资（万元）": "Planned investment (10k yuan)", "开工率（%）": "Start rate (%)"}),
    "rejections": ("/v1/rejections?limit=1000", lambda b: b["rejections"], exports.REJECTIONS,
                   {"退回原因": "Reason", "接收时间": "Received at"}),
    "warnings": ("/v1/warnings?limit=1000", lambda b: b["warnings"], exports.WARNINGS,
                 {"提示类别": "Warning", "业务时间": "Occurred at"}),
}


def get(client: TestClient, path: str) -> Any:
    response = client.get(path, headers=SUPERVISOR)
    assert response.status_code == 200, response.text
    return response


def expected(column: exports.Column, row: dict[str, Any], lang: str) -> Any:
    """What a cell must show for a JSON row: worked out here, not by the exporter."""
    value = row.get(column.key)
    if value is None or value == "":
        return None
    if column.kind == "quantity" and "factor" in row and row["factor"] not in UNITS:
        return None  # a counted factor (data, talent ...) has no quantity: no 0.0 beside its grants
    if column.kind == "rate":
        return round(Decimal(str(value)) * 100, 1)  # its header says %
    if column.kind == "code":
        return name_of(column.names, value, lang)
    if column.kind == "codes":
        return ("、" if lang == "zh" else ", ").join(name_of(column.names, v, lang) for v in value) or None
    if column.kind == "unit":
        return UNITS[value][lang == "en"] if value in UNITS else None
    if column.kind == "bool":
        return {("zh", True): "是", ("zh", False): "否", ("en", True): "yes", ("en", False): "no"}[lang, value]
    if column.kind == "said" and row.get("detail_code"):  # a text by code, in the file's language (issue 20)
        return said(row["detail_code"], row["detail_params"], lang)
    if column.kind == "datetime":
        return datetime.fromisoformat(value).astimezone(CITY_TZ).replace(tzinfo=None, microsecond=0)
    if column.kind == "date":
        return date.fromisoformat(value)
    if column.kind == "said" and row.get("detail_code"):  # a text the domain said, in the export's language
        return said(row["detail_code"], row["detail_params"] or {}, lang)
    return value


def same(cell: Any, want: Any, kind: str) -> bool:
    """A cell read back (text from CSV, a value from openpyxl) against the expected value."""
    if want is None:
        return cell in (None, "")
    if kind == "json":
        return json.loads(cell) == want if not isinstance(want, str) else cell == want
    if isinstance(want, (int, float, Decimal)) and not isinstance(want, bool):
        return Decimal(str(cell)) == Decimal(str(want)) if isinstance(cell, str) else cell == pytest.approx(float(want))
    if isinstance(want, datetime):
        return cell == want if isinstance(cell, datetime) else datetime.fromisoformat(cell) == want
    if isinstance(want, date):
        return cell == datetime.combine(want, time()) if isinstance(cell, datetime) else cell == want.isoformat()
    return cell == want or cell == "'" + want  # a CSV cell Excel would take for a formula is quoted


def check_attachment(response: Any, media_type: str, extension: str, lang: str = "zh") -> None:
    assert response.headers["content-type"].split(";")[0] == media_type
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=\"yaosu-") and f".{extension}\"" in disposition
    named = unquote(disposition.split("filename*=UTF-8''")[1])
    assert named.endswith(f".{extension}") and any("\u4e00" <= ch <= "\u9fff" for ch in named) == (lang == "zh")
    # Dated: 要素沉淀预警_2021-09-30.xlsx (the day it is as of, else the day it was drawn up).
    assert re.search(r"_\d{4}-\d{2}-\d{2}\." + extension + "$", named), named


@pytest.mark.parametrize("name", LISTS)
def test_a_list_downloads_as_csv_and_xlsx(client: TestClient, name: str) -> None:
    path, rows_of, listing, headers = LISTS[name]
    path = path.format(code=construction_project(client) if "{code}" in path else "")
    rows = rows_of(get(client, path).json())
    assert rows, "the demo must give rows to compare"
    join = "&" if "?" in path else "?"

    for lang in ("zh", "en"):
        answer = get(client, f"{path}{join}format=csv" + ("&lang=en" if lang == "en" else ""))
        check_attachment(answer, CSV, "csv", lang)
        assert answer.content.startswith(BOM)
        header, *lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert set(headers if lang == "zh" else headers.values()) <= set(header)
        assert len(lines) == len(rows)
        for line, row in zip(lines, rows):
            for column, cell in zip(listing.columns, line, strict=True):
                assert same(cell, expected(column, row, lang), column.kind), (column.key, cell, row)

    answer = get(client, f"{path}{join}format=xlsx")
    check_attachment(answer, XLSX, "xlsx")
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    sheet = book.active
    assert sheet.title == listing.zh and sheet.freeze_panes == f"A{TOP + 1}"
    title, dated, applied, _, header, *lines = list(sheet.iter_rows())
    assert title[0].value == (listing.zh if name != "library" else "市级项目储备库（一纵一横）")
    assert dated[0].value.startswith("截至日期：") and "编制单位：兰州市发展和改革委员会" in dated[0].value
    assert applied[0].value.startswith("筛选条件：")
    assert sheet.print_title_rows == f"${TOP}:${TOP}" and sheet.page_setup.orientation == "landscape"
    # Fit to one page wide (1 is Excel's default width, left out of the file), as many pages tall as it takes.
    assert sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.page_setup.fitToWidth in (None, 1)
    assert int(sheet.page_setup.fitToHeight) == 0
    assert [c.value for c in header] == [c.header("zh") for c in listing.columns]
    assert set(headers) <= {c.value for c in header}
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows):
        for column, cell in zip(listing.columns, line, strict=True):
            assert same(cell.value, expected(column, row, "zh"), column.kind), (column.key, cell.value, row)
            if column.kind in ("money", "area", "energy", "quantity") and cell.value is not None:
                assert cell.number_format == MONEY
            if column.kind in ("date", "datetime") and cell.value is not None:
                assert isinstance(cell.value, datetime) and cell.is_date  # a real Excel date
    assert all(sheet.column_dimensions[c.column_letter].width >= 6 for c in header)


def test_json_stays_the_default_and_bad_formats_are_400(client: TestClient) -> None:
    plain = get(client, "/v1/alerts?as_of=2021-09-30")
    assert plain.headers["content-type"] == "application/json"
    assert get(client, "/v1/alerts?as_of=2021-09-30&format=json").json() == plain.json()
    for path in ("/v1/alerts?format=pdf", "/v1/stages?lang=fr", "/v1/reports/monthly?month=2021-13",
                 "/v1/reports/monthly?month=1989-12", "/v1/reports/monthly?month=2021-09&format=csv",
                 "/v1/reports/monthly"):
        answer = client.get(path, headers=SUPERVISOR)
        assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json", path


def test_text_from_portals_is_never_a_formula(client: TestClient, settings: Settings) -> None:
    formula, code = '=HYPERLINK("http://x.example","点击")', "2021-620102-48-01-777777"
    posted = client.post("/v1/messages", json=register(code, name=formula), headers=ADMIN)
    assert posted.json()["results"][0]["status"] == "accepted", posted.text
    runner = Runner(client.app.state.ledger, settings)  # type: ignore[attr-defined]
    runner.run_until_caught_up()
    runner.close()
    path = "/v1/stages?stage=planning&district=620102"
    column = [c.key for c in exports.STAGES.columns].index("name")
    lines = list(csv.reader(io.StringIO(get(client, f"{path}&format=csv").content.decode("utf-8-sig"))))
    assert [line[column] for line in lines if code in line] == ["'" + formula]  # Excel shows it, never runs it
    sheet = openpyxl.load_workbook(io.BytesIO(get(client, f"{path}&format=xlsx").content)).active
    cells = [row[column] for row in sheet.iter_rows(min_row=2) if row[1].value == code]
    assert [(c.value, c.data_type) for c in cells] == [(formula, "s")]  # text, not a formula


@pytest.mark.parametrize(("lang", "month", "end"), [("zh", "2021-03", "2021-03-31"), ("en", "2021-09", "2021-09-30")])
def test_the_monthly_report(client: TestClient, lang: str, month: str, end: str) -> None:
    answer = get(client, f"/v1/reports/monthly?month={month}&format=xlsx&lang={lang}")
    check_attachment(answer, XLSX, "xlsx", lang)
    assert f"monthly-report-{month}" in answer.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    names = (["总览", "五、区县排名", "六、预警", "七、要素台账", "八、提示"] if lang == "zh"
             else ["Overview", "5. District ranking", "6. Alerts", "7. Factor ledger", "8. Warnings"])
    assert book.sheetnames == names
    overview, ranking, alerts, ledger, warnings = (book[n] for n in names)

    def body(sheet: Any) -> list[tuple[Any, ...]]:
        assert sheet.freeze_panes == f"A{TOP + 1}" and sheet.page_setup.orientation == "landscape"
        assert sheet.cell(1, 1).value == sheet.title  # each sheet names itself, numbered
        return list(sheet.iter_rows(min_row=TOP + 1, values_only=True))

    districts = get(client, f"/v1/rankings/districts?year=2021&as_of={end}").json()["districts"]
    assert districts and [(row[0], row[1]) for row in body(ranking)] == [
        (d["rank"], name_of("district", d["district"], lang)) for d in districts]
    month_alerts = get(client, f"/v1/alerts?as_of={end}").json()["alerts"]
    assert month_alerts and [row[0] for row in body(alerts)] == [a["project_code"] for a in month_alerts]
    month_ledger = get(client, f"/v1/ledger?year=2021&as_of={end}").json()["rows"]  # as the month ended
    assert [row[:2] for row in body(ledger)] == [(name_of("district", r["district"], lang), 2021) for r in month_ledger]
    month_warnings = get(client, f"/v1/warnings?from={month}-01&to={end}&limit=1000").json()["warnings"]
    assert [row[0] for row in body(warnings)] == [w["position"] for w in month_warnings]
    assert month_warnings or month != "2021-03", "the demo warns in March"

    # The overview: the title block, then four numbered, captioned tables, a blank row between them.
    blocks: list[list[tuple[Any, ...]]] = [[]]
    for row in overview.iter_rows(values_only=True):
        if any(v is not None for v in row):
            blocks[-1].append(row)
        elif blocks[-1]:
            blocks.append([])
    title, statuses, library_counts, alert_counts, factor_use = (b for b in blocks if b)
    number = int(month[5:])
    assert title[0][0] == (f"兰州市重大项目要素保障月报（2021年{number}月）" if lang == "zh"
                           else f"Factor guarantee monthly report of Lanzhou's major projects ({month})")
    assert ("编制单位：兰州市发展和改革委员会" if lang == "zh" else "Issued by: 兰州市发展和改革委员会") in title[1][0]
    assert title[2][0] == ("数据截至：" if lang == "zh" else "Figures as of the end of: ") + end
    assert [b[0][0][:2] for b in (statuses, library_counts, alert_counts, factor_use)] == (
        ["一、", "二、", "三、", "四、"] if lang == "zh" else ["1.", "2.", "3.", "4."])
    # Counted as the month ended (issue 22), not as today: each project's state on its last day.
    on_the_day: dict[str, int] = {}
    for stage in get(client, "/v1/stages").json()["stages"]:
        for project in stage["projects"]:
            state = client.get(f"/v1/projects/{project['code']}?as_of={end}", headers=SUPERVISOR)
            if state.status_code == 200:
                on_the_day[state.json()["status"]] = on_the_day.get(state.json()["status"], 0) + 1
    assert {row[0]: row[1] for row in statuses[2:] if row[1]} == {
        name_of("status", s, lang): n for s, n in on_the_day.items()}
    municipal = get(client, "/v1/libraries/municipal").json()["totals"]["projects"]
    assert 0 < dict(row[:2] for row in library_counts[2:])[name_of("library", "municipal", lang)] <= municipal
    assert sum(row[3] for row in alert_counts[2:]) == len(month_alerts)
    assert factor_use[1][1] == ("能耗指标（吨标煤）" if lang == "zh" else "Energy quota (tce)")
    energy = {name_of("district", r["district"], lang): r["quota"]
              for r in get(client, "/v1/ledger?year=2021&factor=energy").json()["rows"]}
    assert energy and {row[0]: row[1] for row in factor_use[2:] if row[0] in energy} == pytest.approx(energy)


def test_a_month_not_over_has_no_report(client: TestClient) -> None:
    """A report for this month (or a later one) would change as the month goes on: refused, saying why."""
    today = city_today()
    for month, lang in ((f"{today:%Y-%m}", "zh"), (f"{today.year + 1}-01", "en")):
        answer = client.get(f"/v1/reports/monthly?month={month}&format=xlsx&lang={lang}", headers=SUPERVISOR)
        assert answer.status_code == 409 and answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["code"] == "month_not_over" and problem["month"] == month
        assert ("尚未结束" in problem["detail"]) == (lang == "zh") and ("not over" in problem["detail"]) == (lang == "en")
    last = date(today.year, today.month, 1) - timedelta(days=1)
    assert get(client, f"/v1/reports/monthly?month={last:%Y-%m}&format=xlsx").status_code == 200


def test_schemathesis_accepts_every_download(client: TestClient) -> None:
    # The fuzz run seldom draws `csv` or `xlsx` (it shrinks to the first value): each is checked here.
    state = client.app.state  # type: ignore[attr-defined]
    app = create_app(state.ledger, serving_testserver(state.settings), state.read_models)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config.from_dict(
        {"checks": {"enabled": True}}))
    code = construction_project(client)
    cases = [(path, {"library": "municipal"} if "{library}" in path else {}, query) for path, query in (
        ("/v1/libraries/{library}", {}), ("/v1/stages", {}), ("/v1/alerts", {}), ("/v1/ledger", {}),
        ("/v1/ledger", {"project": code}), ("/v1/rankings/districts", {"year": "2021"}), ("/v1/rejections", {}),
        ("/v1/warnings", {}))]
    for path, parameters, query in cases:
        for format, lang in (("csv", "zh"), ("xlsx", "en")):
            case = schema[path]["GET"].Case(path_parameters=parameters, query={**query, "format": format, "lang": lang})
            assert case.call_and_validate(headers=ADMIN).status_code == 200
    report = schema["/v1/reports/monthly"]["GET"].Case(query={"month": "2021-09"})
    assert report.call_and_validate(headers=ADMIN).status_code == 200
