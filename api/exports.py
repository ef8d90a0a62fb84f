"""Downloads of the lists (导出): CSV and Excel for supervisors who report upward in Excel.

A list is declared once as a `projections.listing.Listing`, beside its query in its read model (those
without one yet are declared below): its columns and where its rows are in the JSON answer. `download`
turns that answer into CSV or XLSX; `workbook` writes several tables into one file (the monthly report).
Codes are shown by `infra.catalogue.name_of`, headers in Chinese or English.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import xlsxwriter
from fastapi.responses import Response

from api.json import JSON
from domain import reference
from infra import figures
from infra.catalogue import name_of, translations
from infra.clock import city_today
from projections import audit, factor_ledger, libraries, sedimentation, stages
from projections.listing import DISTRICT, Cell, Column, Lang, Listing, Paging
from projections.warnings import LISTING as WARNINGS

CSV_MEDIA_TYPE = "text/csv"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
#: The OpenAPI `responses` entry of a list that can also be downloaded (JSON stays from `response_model`).
DOWNLOADS: dict[int | str, dict[str, Any]] = {
    200: {"description": "the list; as a download with `format=csv` or `format=xlsx`",
          "content": {CSV_MEDIA_TYPE: _BINARY, XLSX_MEDIA_TYPE: _BINARY}}}

#: Excel number formats (a unit goes into the header: `Column.header`; a rate is its percentage, its header
#: says %: `Column.value`).
NUMBER_FORMATS: dict[str, str] = {"int": "#,##0", "number": "#,##0.0", "money": "#,##0.00", "area": "#,##0.00",
                                  "energy": "#,##0.00", "quantity": "#,##0.00", "rate": "0.0",
                                  "date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss"}
#: Excel's limit of a cell's text; a kept rejection body can be longer.
CELL_LIMIT = 32767
#: A CSV cell starting with these is run as a formula by Excel: text from portals must not be. Their
#: full-width and small forms (＝＋－＠, ﹦﹢﹣﹫) too, which a spreadsheet may read as them: any first
#: character whose compatibility form (NFKC) starts with one of these.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

@dataclass(frozen=True)
class Table:
    """Rows under one header row, with an optional caption above (several share a sheet in a report)."""

    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]
    caption: str | None = None


@dataclass(frozen=True)
class Heading:
    """The title block above a sheet's tables (XLSX only: a CSV stays one header line for machines): the
    title, then lines such as 截至 and 编制单位, and the filters applied."""

    title: str
    lines: tuple[str, ...] = ()


def words(lang: Lang) -> Any:
    """The catalogue's wording of the console's English in the file's language."""
    return translations(lang).gettext


def colon(lang: Lang) -> str:
    return "：" if lang == "zh" else ": "


def heading(title: str, lang: Lang, issuer: str, as_of: date, filters: Sequence[str] = ()) -> Heading:
    """A list's title block: its title; 截至 the day it is as of and 编制单位; the filters applied (or 全部)."""
    _, gap = words(lang), "　" if lang == "zh" else "    "
    dated = f"{_('As of')}{colon(lang)}{as_of.isoformat()}{gap}{_('Issued by')}{colon(lang)}{issuer}"
    applied = f"{_('Filters')}{colon(lang)}{('；' if lang == 'zh' else '; ').join(filters) or _('All')}"
    return Heading(title, (dated, applied))


def filters_applied(listing: Listing, asked: Mapping[str, Any], lang: Lang) -> list[str]:
    """The filters a download was asked with, as `label：value` (a code by its name); its date aside (the
    title block states 截至), and paging."""
    shown = []
    for f in listing.filters:
        value = asked.get(f.name)
        if value is None or f.today:
            continue
        text = value.isoformat() if isinstance(value, date) else name_of(f.names, str(value), lang) if f.names else str(value)
        shown.append(f"{listing.label(f, lang)}{'＝' if lang == 'zh' else ' = '}{text}")
    return shown


def dated_on(listing: Listing, asked: Mapping[str, Any]) -> date:
    """The day a list is as of: its `as_of` filter if it has one, else today (city time)."""
    found = next((asked.get(f.name) for f in listing.filters if f.today), None)
    return found if isinstance(found, date) else city_today()


def download(listing: Listing, body: dict[str, Any], format: str, lang: Lang, *, asked: Mapping[str, Any],
             issuer: str, name: str = "", title: str = "") -> Response:
    """The JSON answer as it is today, or its rows as a CSV or XLSX attachment (the file named `name`
    and `title` when the list's own names would not tell one download from another), dated by the day
    it is as of. The XLSX opens with a title block (title, 截至, 编制单位, filters); the CSV does not."""
    if format == "json":
        return JSON(body)
    table = Table(listing.columns, listing.rows_of(body))
    name, title, day = name or listing.name, title or listing.title(lang), dated_on(listing, asked)
    if format == "csv":
        return attachment(csv_bytes(table, lang), CSV_MEDIA_TYPE, name, title, "csv", day)
    block = heading(title, lang, issuer, day, filters_applied(listing, asked, lang))
    return attachment(workbook([(listing.title(lang), [table])], lang, block), XLSX_MEDIA_TYPE, name, title, "xlsx",
                      day)


def attachment(content: bytes, media_type: str, name: str, title: str, extension: str, day: date) -> Response:
    """A file named by its title and the day it is as of: 要素沉淀预警_2026-12-03.xlsx (yaosu-alerts-2026-12-03.xlsx
    for old clients)."""
    # RFC 6266: an ASCII name for old clients, the Chinese one (RFC 5987) for the rest.
    disposition = (f"attachment; filename=\"yaosu-{name}-{day.isoformat()}.{extension}\"; "
                   f"filename*=UTF-8''{quote(f'{title}_{day.isoformat()}')}.{extension}")
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


def csv_bytes(table: Table, lang: Lang) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.header(lang) for c in table.columns])
    writer.writerows([_csv_text(c.value(row, lang)) for c in table.columns] for row in table.rows)
    # The BOM is how Excel knows the file is UTF-8 and not the locale's code page.
    return out.getvalue().encode("utf-8-sig", errors="replace")


def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, (Decimal, float)):
        return format(figures.decimal(value), "f")  # never 1e+16
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, str) and starts_a_formula(value):
        return "'" + value
    return str(value)


def starts_a_formula(text: str) -> bool:
    return bool(text) and unicodedata.normalize("NFKC", text[0]).startswith(_FORMULA_START)


def workbook(sheets: Sequence[tuple[str, Sequence[Table]]], lang: Lang, block: Heading | None = None) -> bytes:
    """One XLSX file: each sheet its title block (if any), then its tables one under another, a blank row
    between them; printed landscape, one page wide, a single table's header row on every page."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True})
    title_format = book.add_format({"bold": True, "font_size": 16})
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
    formats = {kind: book.add_format({"num_format": f}) for kind, f in NUMBER_FORMATS.items()}
    for number, (title, tables) in enumerate(sheets):
        sheet = book.add_worksheet(title)
        widths: dict[int, int] = {}
        row = 0
        if block is not None:
            # The report's title on its first sheet; each further sheet names itself.
            sheet.write_string(row, 0, block.title if number == 0 else title, title_format)
            sheet.set_row(row, 24)
            for line in block.lines:
                row += 1
                sheet.write_string(row, 0, line)
            row += 2
        for table in tables:
            if table.caption:
                sheet.write_string(row, 0, table.caption, bold)
                row += 1
            top = row
            for col, column in enumerate(table.columns):
                sheet.write_string(row, col, column.header(lang), header)
                widths[col] = max(widths.get(col, 0), _width(column.header(lang)))
            for item in table.rows:
                row += 1
                for col, column in enumerate(table.columns):
                    widths[col] = max(widths[col], _write(sheet, row, col, column, column.value(item, lang), formats))
            if len(tables) == 1 and not table.caption:
                sheet.freeze_panes(top + 1, 0)
                sheet.autofilter(top, 0, row, len(table.columns) - 1)
                sheet.repeat_rows(top)
            row += 2
        for col, width in widths.items():
            sheet.set_column(col, col, min(max(width, 6), 60) + 2)
        print_setup(sheet)
    book.close()
    return out.getvalue()


def print_setup(sheet: Any) -> None:
    """As an office prints a list: A4 landscape, every column on one page wide, pages numbered."""
    sheet.set_paper(9)  # A4
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.center_horizontally()
    sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    sheet.set_footer("&C&P / &N")


def _write(sheet: Any, row: int, col: int, column: Column, value: Cell, formats: dict[str, Any]) -> int:
    """Writes one cell (text always as text: never a formula); gives the width it needs."""
    if value is None:
        return 0
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        sheet.write_number(row, col, float(value), formats.get(column.kind))
        return len(f"{float(value):,.2f}")
    if isinstance(value, (date, datetime)):
        sheet.write_datetime(row, col, value, formats["datetime" if isinstance(value, datetime) else "date"])
        return 19 if isinstance(value, datetime) else 10
    text = str(value)[:CELL_LIMIT]
    sheet.write_string(row, col, text)
    return _width(text)


def _width(text: str) -> int:
    """Columns of a text in Excel's measure: a Chinese character takes two."""
    line = max(text.splitlines() or [""], key=len)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line[:200])


# --- what each list shows ----------------------------------------------------------------------

LIBRARY = libraries.LISTING

STAGES = stages.LISTING
ALERTS = sedimentation.ALERTS

LEDGER = factor_ledger.LISTING
GRANTS = factor_ledger.PROJECT_GRANTS

RANKING = sedimentation.RANKING

#: Rejected messages, as `GET /v1/rejections` and its download show them. Declared here, not beside
#: their query: they are read from the ledger (`service.ledger.Ledger.rejections`), a layer below the
#: read models' declarations, and only the API's route lists them.
REJECTIONS = Listing(
    "rejections", "退回消息", "Rejections", rows="rejections", item="Rejection", response="RejectionsResponse",
    columns=(
        Column("position", "序号", "Position", "int"),
        Column("received_at", "接收时间", "Received at", "datetime"),
        Column("message_id", "消息编号", "Message", nullable=True, look="code"),
        Column("type", "消息类型", "Type", nullable=True),
        Column("code", "退回代码", "Code"),
        Column("code", "退回原因类别", "Reason kind", "code", "rejection"),
        Column("reason", "退回原因", "Reason", "said"),
        Column("subject", "对象", "Subject", nullable=True),
        Column("submitted_by", "报送方", "Submitted by"),
        Column("channel", "渠道", "Channel", "code", "channel"),
        Column("body", "原始消息", "Body", "json",
               description="the message as received: its JSON, or its text when it was not JSON")),
    fields=(
        Column("body_truncated", "已截断", "Truncated", "bool", nullable=True, optional=True,
               description="true when the message was too large to keep whole: `body` is its first KiBs"),
        Column("body_length", "字节数", "Bytes", "int", description="bytes of a message too large to keep whole",
               nullable=True, optional=True),
        Column("body_sha256", "摘要", "SHA-256", description="sha256 of a message too large to keep whole",
               nullable=True, optional=True)),
    paging=Paging(page=100))


AUDIT = audit.AUDIT

# --- the monthly report's overview -------------------------------------------------------------

STATUS_COUNTS = (Column("status", "项目状态", "Status", "code", "status"), Column("count", "项目数", "Projects", "int"))
LIBRARY_COUNTS = (Column("library", "项目库", "Library", "code", "library"),
                  Column("projects", "项目数", "Projects", "int"))
ALERT_COUNTS = (DISTRICT, Column("yellow", "黄色预警", "Yellow", "int"), Column("red", "红色预警", "Red", "int"),
                Column("total", "合计", "Total", "int"))
FACTOR_USE = (DISTRICT,
              Column("energy_quota", "能耗指标", "Energy quota", "energy"),
              Column("energy_used", "已用能耗", "Energy used", "energy"),
              Column("energy_remaining", "剩余能耗", "Energy remaining", "energy"),
              Column("land_quota", "用地指标", "Land quota", "area"),
              Column("land_used", "已供土地", "Land used", "area"),
              Column("land_remaining", "剩余用地", "Land remaining", "area"))
#: Numbers of the report's sections (一、二、…), as a report to the city government numbers them.
CHINESE_NUMERALS = "一二三四五六七八九十"


def alert_counts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alerts per district and level, the districts in code order."""
    counts: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        row = counts.setdefault(alert["district"], {"district": alert["district"], "yellow": 0, "red": 0, "total": 0})
        row[alert["level"]] += 1
        row["total"] += 1
    return [counts[d] for d in sorted(counts)]


def factor_use(ledger_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Energy and land per district: the year's quota, what is in use (granted less reclaimed), what is left."""
    use: dict[str, dict[str, Any]] = {}
    for r in ledger_rows:
        if r["factor"] in ("energy", "land"):
            row = use.setdefault(r["district"], {"district": r["district"]})
            row.update({f"{r['factor']}_quota": r["quota"], f"{r['factor']}_used": r["granted"] - r["reclaimed"],
                        f"{r['factor']}_remaining": r["remaining"]})
    return [use[d] for d in sorted(use)]


def section(number: int, text: str, lang: Lang) -> str:
    """A numbered section's caption: 一、… in Chinese, 1. … in English."""
    return f"{CHINESE_NUMERALS[number - 1]}、{text}" if lang == "zh" else f"{number}. {text}"


def report_title(year: int, month: int, lang: Lang) -> str:
    return words(lang)("Factor guarantee monthly report of Lanzhou's major projects ({year}-{month:02d})").format(
        year=year, month=month)


def monthly_report(month: str, lang: Lang, *, issuer: str, issued_on: date, statuses: dict[str, int],
                   library_counts: dict[str, int], alerts: dict[str, Any], ranking: dict[str, Any],
                   ledger: dict[str, Any], warnings: dict[str, Any]) -> Response:
    """The month's report to the city government (月报), every figure as the month ended: its title block
    (title, 编制单位, 编制日期, 数据截至), then numbered sections: projects by status and library, alerts
    per district, energy and land use, the ranking, the alerts, the ledger and the month's warnings."""
    _, year, number = words(lang), int(month[:4]), int(month[5:])
    end: date = alerts["as_of"]
    overview = [
        Table(STATUS_COUNTS, [{"status": s, "count": n} for s, n in statuses.items()],
              section(1, _("Projects by status"), lang)),
        Table(LIBRARY_COUNTS, [{"library": lib, "projects": library_counts.get(lib, 0)} for lib in reference.LIBRARIES],
              section(2, _("Projects by reserve library"), lang)),
        Table(ALERT_COUNTS, alert_counts(alerts["alerts"]), section(3, _("Alerts by district"), lang)),
        Table(FACTOR_USE, factor_use(ledger["rows"]),
              section(4, _("Energy and land quota use in {year}").format(year=year), lang)),
    ]
    sheets = [(_("Overview"), overview)]
    sheets += [(section(n, listing.title(lang), lang), [Table(listing.columns, listing.rows_of(body))])
               for n, (listing, body) in enumerate(((RANKING, ranking), (REPORT_ALERTS, alerts), (LEDGER, ledger),
                                                     (REPORT_WARNINGS, warnings)), start=5)]
    title, gap = report_title(year, number, lang), "　" if lang == "zh" else "    "
    block = Heading(title, (f"{_('Issued by')}{colon(lang)}{issuer}{gap}{_('Issued on')}{colon(lang)}{issued_on}",
                            f"{_('Figures as of the end of')}{colon(lang)}{end.isoformat()}"))
    return attachment(workbook(sheets, lang, block), XLSX_MEDIA_TYPE, f"monthly-report-{month}", title, "xlsx",
                      issued_on)


#: In the report the alerts and warnings sheets carry short names.
REPORT_ALERTS = replace(ALERTS, zh="预警", en="Alerts")
REPORT_WARNINGS = replace(WARNINGS, zh="提示", en="Warnings")
