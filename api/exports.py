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
from typing import Any, Sequence
from urllib.parse import quote

import xlsxwriter
from fastapi.responses import Response

from api.json import JSON
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

#: Excel number formats (a unit goes into the header: `Column.header`).
NUMBER_FORMATS: dict[str, str] = {"int": "0", "number": "0.0", "money": "#,##0.00", "area": "#,##0.00",
                                  "energy": "#,##0.00", "quantity": "#,##0.00", "rate": "0.00%",
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


def download(listing: Listing, body: dict[str, Any], format: str, lang: Lang, *, name: str = "",
             title: str = "") -> Response:
    """The JSON answer as it is today, or its rows as a CSV or XLSX attachment (the file named `name`
    and `title` when the list's own names would not tell one download from another)."""
    if format == "json":
        return JSON(body)
    table = Table(listing.columns, listing.rows_of(body))
    name, title = name or listing.name, title or listing.title(lang)
    if format == "csv":
        return attachment(csv_bytes(table, lang), CSV_MEDIA_TYPE, name, title, "csv")
    return attachment(workbook([(listing.title(lang), [table])], lang), XLSX_MEDIA_TYPE, name, title, "xlsx")


def attachment(content: bytes, media_type: str, name: str, title: str, extension: str) -> Response:
    # RFC 6266: an ASCII name for old clients, the Chinese one (RFC 5987) for the rest.
    disposition = f"attachment; filename=\"yaosu-{name}.{extension}\"; filename*=UTF-8''{quote(title)}.{extension}"
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
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, str) and starts_a_formula(value):
        return "'" + value
    return str(value)


def starts_a_formula(text: str) -> bool:
    return bool(text) and unicodedata.normalize("NFKC", text[0]).startswith(_FORMULA_START)


def workbook(sheets: Sequence[tuple[str, Sequence[Table]]], lang: Lang) -> bytes:
    """One XLSX file: each sheet its tables one under another, a blank row between them."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True})
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
    formats = {kind: book.add_format({"num_format": f}) for kind, f in NUMBER_FORMATS.items()}
    for title, tables in sheets:
        sheet = book.add_worksheet(title)
        widths: dict[int, int] = {}
        row = 0
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
                sheet.freeze_panes(1, 0)
                sheet.autofilter(top, 0, row, len(table.columns) - 1)
            row += 2
        for col, width in widths.items():
            sheet.set_column(col, col, min(max(width, 6), 60) + 2)
    book.close()
    return out.getvalue()


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

STAGE_COUNTS = (Column("stage", "阶段", "Stage", "code", "stage"), Column("count", "项目数", "Projects", "int"))
LIBRARY_TOTALS = (Column("library", "项目库", "Library", "code", "library"),
                  Column("projects", "项目数", "Projects", "int"),
                  Column("total_investment", "总投资", "Total investment", "money"))
ALERT_COUNTS = (DISTRICT, Column("yellow", "黄色预警", "Yellow", "int"), Column("red", "红色预警", "Red", "int"),
                Column("total", "合计", "Total", "int"))
FACTOR_USE = (DISTRICT,
              Column("energy_quota", "能耗指标", "Energy quota", "energy"),
              Column("energy_used", "已用能耗", "Energy used", "energy"),
              Column("energy_remaining", "剩余能耗", "Energy remaining", "energy"),
              Column("land_quota", "用地指标", "Land quota", "area"),
              Column("land_used", "已供土地", "Land used", "area"),
              Column("land_remaining", "剩余用地", "Land remaining", "area"))


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


def monthly_report(month: str, lang: Lang, *, stage_counts: list[dict[str, Any]],
                   library_totals: list[dict[str, Any]], alerts: dict[str, Any], ranking: dict[str, Any],
                   ledger: dict[str, Any], warnings: dict[str, Any]) -> Response:
    """The month's report to the city government: an overview, then the ranking, alerts, ledger and warnings."""
    zh = lang == "zh"
    year, number = int(month[:4]), int(month[5:])
    end = alerts["as_of"]
    overview = [
        Table(STAGE_COUNTS, stage_counts, "各阶段项目数(当前)" if zh else "Projects per stage (now)"),
        Table(LIBRARY_TOTALS, library_totals, "各项目库入库项目(当前)" if zh else "Projects per library (now)"),
        Table(ALERT_COUNTS, alert_counts(alerts["alerts"]),
              f"截至{end}各区县预警" if zh else f"Alerts per district on {end}"),
        Table(FACTOR_USE, factor_use(ledger["rows"]),
              f"{year}年能耗与用地指标使用" if zh else f"Energy and land quota use in {year}"),
    ]
    sheets = [("总览" if zh else "Overview", overview)]
    sheets += [(listing.title(lang), [Table(listing.columns, listing.rows_of(body))])
               for listing, body in ((RANKING, ranking), (REPORT_ALERTS, alerts), (LEDGER, ledger),
                                     (REPORT_WARNINGS, warnings))]
    title = f"{year}年{number}月要素保障月报" if zh else f"Monthly report {month}"
    return attachment(workbook(sheets, lang), XLSX_MEDIA_TYPE, f"monthly-report-{month}", title, "xlsx")


#: In the report the alerts and warnings sheets carry short names.
REPORT_ALERTS = replace(ALERTS, zh="预警", en="Alerts")
REPORT_WARNINGS = replace(WARNINGS, zh="提示", en="Warnings")
