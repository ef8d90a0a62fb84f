"""A listing's page, derived from its declaration (`projections.listing.Listing`): the filter form and
the table the macros `listing_form` and `listing_table` (templates/macros.html) draw. A new column or
filter in a read model's declaration shows here with no page code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlencode

from api.console.i18n import when
from domain import reference
from infra import figures
from projections.listing import Column, Filter, Listing, Order, in_order

MEASURES = frozenset({"money", "area", "energy", "quantity"})
NUMBERS = frozenset({"int", "number", "rate", *MEASURES})


@dataclass(frozen=True)
class Field:
    """One filter of the form: how it is asked for, and the value it has now."""

    name: str
    label: str
    input: str  # "select", "date", "number" or "text"
    value: str
    options: tuple[str, ...] = ()
    names: str = ""
    size: int = 0
    placeholder: str = ""
    min: Any = None
    max: Any = None


@dataclass(frozen=True)
class Cell:
    text: str | None  # None: nothing to show (drawn as —)
    value: Any = None
    look: str = ""
    link: str | None = None
    css: str = ""


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    look: str = ""


@dataclass(frozen=True)
class Header:
    label: str
    css: str = ""
    link: str | None = None  # sorts the list by this column (the other way if it is sorted by it)
    sorted: str = ""  # "asc" or "desc" if the list is sorted by it


@dataclass(frozen=True)
class Pager:
    """Where a page is in its list: 共 N 条, 第 p / n 页, 上一页 and 下一页."""

    count: int
    page: int
    pages: int
    previous: str | None
    next: str | None


@dataclass(frozen=True)
class Shown:
    headers: tuple[Header, ...]
    rows: tuple[Row, ...]
    pager: Pager | None = None


def form(listing: Listing, asked: Mapping[str, Any], lang: str) -> tuple[Field, ...]:
    return tuple(field(listing, f, asked.get(f.name), lang) for f in listing.filters)


def field(listing: Listing, f: Filter, value: Any, lang: str) -> Field:
    label, now = listing.label(f, lang), "" if value is None else str(value)
    offered = f.choices if f.choices is not None else f.offered
    if offered is not None:
        return Field(f.name, label, "select", now, tuple(offered), f.names)
    if f.type is date:
        return Field(f.name, label, "date", now)
    if f.type is int:
        return Field(f.name, label, "number", now, min=f.ge, max=f.le)
    return Field(f.name, label, "text", now, size=f.size, placeholder=f.placeholder)


def table(listing: Listing, rows: Sequence[Mapping[str, Any]], lang: str, as_of: date | None = None, *,
          paged: Paged | None = None) -> Shown:
    """The console's table of a list's rows; with `paged` (the page of a sorted, paged list), its headers
    are sort links and a pager goes with it."""
    columns = listing.page_columns
    return Shown(tuple(header(listing, c, lang, paged) for c in columns),
                 tuple(Row(tuple(cell(c, r, lang, as_of) for c in columns),
                           str(r.get(listing.row_look) or "") if listing.row_look else "") for r in rows),
                 pager(paged) if paged is not None else None)


@dataclass(frozen=True)
class Paged:
    """A console page of a list: how it is sorted and paged, how many rows the list has, and where it is
    (its path and query, to link to the other pages and orders)."""

    order: Order
    count: int
    path: str
    query: Mapping[str, str]

    def link(self, **changed: Any) -> str:
        kept = {k: v for k, v in self.query.items() if k not in ("sort", "order", "page", "after")}
        now = {"sort": self.order.sort, "order": "desc" if self.order.descending else None, "page": None}
        return f"{self.path}?{urlencode({**kept, **{k: v for k, v in {**now, **changed}.items() if v is not None}})}"


def paginated(listing: Listing, rows: list[dict[str, Any]], query: Mapping[str, str], path: str
              ) -> tuple[list[dict[str, Any]], Paged]:
    """A list read whole, as a console page shows it: sorted as the query asks, the page it asks for."""
    order = listing.ordering(query)
    page = Paged(order, len(rows), path, query)
    return in_order(rows, order)[order.offset:order.offset + order.size], page


def header(listing: Listing, column: Column, lang: str, paged: Paged | None) -> Header:
    css = "n" if column.kind in NUMBERS else ""
    if paged is None or column.key not in listing.sortable:
        return Header(column.header(lang), css)
    here = paged.order.sort == column.key
    direction = ("desc" if paged.order.descending else "asc") if here else ""
    return Header(column.header(lang), css, paged.link(sort=column.key, order="desc" if direction == "asc" else None),
                  direction)


def pager(paged: Paged) -> Pager:
    page, pages = paged.order.page, paged.order.pages(paged.count)
    return Pager(paged.count, page, pages, paged.link(page=page - 1) if page > 1 else None,
                 paged.link(page=page + 1) if page < pages else None)


def cell(column: Column, row: Mapping[str, Any], lang: str, as_of: date | None) -> Cell:
    value = row.get(column.key)
    css = ("n" if column.kind in NUMBERS else "detail" if column.kind == "said"
           else "whole" if column.kind in ("date", "datetime", "code", "unit") or column.look in ("project", "case")
           else "")
    text = shown(column, row, lang)
    link = None
    if column.look == "project" and isinstance(value, str) and reference.is_project_code(value):
        link = f"/console/projects/{value}" + (f"?as_of={as_of}" if as_of else "")
    elif column.look == "case" and isinstance(value, str):
        link = f"/console/supervision/{quote(value, safe='')}" + (f"?as_of={as_of}" if as_of else "")
    return Cell(text, value, column.look, link, css)


def shown(column: Column, row: Mapping[str, Any], lang: str) -> str | None:
    """A value as the page shows it: as its download does (codes by their names, texts in the page's
    language), but times in city time to the minute and amounts grouped to their decimals."""
    value = row.get(column.key)
    if value is None or value == "":
        return None
    if column.kind in ("date", "datetime"):
        return when(value)
    if column.kind == "int":
        return figures.count(value)
    if column.kind == "rate":
        return figures.percent(value)
    if column.kind == "quantity" and "factor" in row:  # each row in its factor's unit (the row says which)
        return None if not figures.measured(row["factor"]) else figures.quantity(value, row["factor"])
    if column.kind in MEASURES or column.kind == "number":
        return figures.grouped(value, figures.KIND_PLACES[column.kind])
    cell = column.value(row, lang)
    return None if cell is None else str(cell)


def query_of(asked: Mapping[str, Any]) -> dict[str, str]:
    """The filters given, as a query string states them (for the export link and the next page)."""
    return {name: value.isoformat() if isinstance(value, date) else str(value)
            for name, value in asked.items() if value is not None}


def link(path: str, asked: Mapping[str, Any], **more: Any) -> str:
    return f"{path}?{urlencode({**{k: v for k, v in more.items() if v is not None}, **query_of(asked)})}"
