"""A listing (列表), declared once beside its query: its filters, its columns, its order and paging.

The API's query parameters and response model, the CSV/XLSX download and the console's form and table
are all derived from a `Listing` (api/listings.py, api/exports.py, api/console/pages.py): adding a
column or a filter to a list is a change to its read model (and at most its template).

A `Filter` is a query parameter: how it is checked (type, bounds, pattern, choices), how the query
uses it (the column it compares, by an operator), and how it is asked for (label, description). The
API refuses a value outside its bounds (400); the console reads the same declaration leniently:
a value the API would refuse is ignored there, as if not given (`Filter.parsed`).

A `Column` is a field of each row: its labels, what kind of value it is (and so its Excel format and
unit, and how the console shows it), the `name_of` kind of a code, and how the API describes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Callable, Final, Literal, Mapping

from pydantic import Field, TypeAdapter, ValidationError

from domain import reference
from domain.reference import CITY_TZ
from infra import figures
from infra.catalogue import joined, name_of, said
from infra.clock import city_today
from infra.presenter import dumps
from projections.db import Db
from projections.model import Table

FIRST_DAY, LAST_DAY = date(reference.FIRST_YEAR, 1, 1), date(reference.LAST_YEAR, 12, 31)
assert (reference.FIRST_YEAR, reference.LAST_YEAR) == (1990, 2100), "DATE_PATTERN below states these years"
#: Dates of the business years (FIRST_YEAR to LAST_YEAR), as a pattern OpenAPI can state.
DATE_PATTERN = r"^(199[0-9]|20[0-9][0-9]|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
#: Store positions: JSON readers hold integers as doubles, exact up to 2**53.
LAST_POSITION = 2**53
#: A name to match exactly (a department, user, token, message type or message id as stored): no stored
#: name holds a control character (contract v1.2), and PostgreSQL's text cannot even be asked for NUL.
NO_CONTROLS = r"^[^\x00-\x1f\x7f-\x9f]+$"
#: Who sends messages: the departments and the district portals.
SENDERS: tuple[str, ...] = (*reference.DEPARTMENTS, *(reference.district_portal(d) for d in reference.DISTRICTS))

Lang = Literal["zh", "en"]
Kind = Literal["text", "said", "int", "number", "money", "area", "energy", "quantity", "rate", "date", "datetime",
               "code", "codes", "unit", "bool", "json"]
#: The factor whose unit a kind of amount is in; the unit (the catalogue's `unit.<factor>`) goes into
#: the header (计划投资(万元)) so that the cell stays a number.
UNIT_OF: dict[str, str] = {"money": "funds", "area": "land", "energy": "energy"}
#: The factors whose quantities are measured (in a unit); the others are counted.
MEASURED: Final = figures.MEASURED
#: The JSON type of each kind (a code with choices is one of them).
TYPES: dict[str, Any] = {"text": str, "said": str, "int": int, "number": int | float, "money": int | float,
                         "area": int | float, "energy": int | float, "quantity": int | float, "rate": int | float,
                         "date": date, "datetime": datetime,
                         "code": str, "codes": list[str], "unit": str, "bool": bool, "json": Any}
Cell = str | int | float | Decimal | date | datetime | None


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: Kind = "text"
    names: str = ""  # the `name_of` kind of a code column
    description: str | None = None  # as the API describes the field
    nullable: bool = False
    optional: bool = False  # may be left out of an item (null by default); else always given, even when null
    choices: tuple[str, ...] | None = None  # the codes the field holds, if a closed set
    look: str = ""  # how the console shows it, beside its kind: "chip", "project", "case" (links), "code"
    #: The column of the project code whose registered name this column is: filled in after the read, so a
    #: page sorted by it sorts by the name looked up in the model's `names` table.
    name_of_code: str = ""

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def header(self, lang: str) -> str:
        """Its label with its unit, if one unit holds for the whole column: 总投资（万元）, 开工率（%）."""
        title = self.label(lang)
        unit = "%" if self.kind == "rate" else name_of("unit", UNIT_OF[self.kind], lang) if self.kind in UNIT_OF else ""
        if not unit:
            return title
        return f"{title}（{unit}）" if lang == "zh" else f"{title} ({unit})"

    def value(self, row: Mapping[str, Any], lang: str) -> Cell:
        """The cell of a download: codes by their names, texts in the language asked for."""
        value = row.get(self.key)
        if value is None:
            return None
        if self.kind == "rate":
            return figures.percent_of(value)  # its header says %: 85.3, not 0.853
        if self.kind == "quantity" and "factor" in row and not figures.measured(row["factor"]):
            return None  # a counted factor (data, talent ...) has no quantity: never a 0.0 beside its grants
        if self.kind == "code":
            return name_of(self.names, value, lang)
        if self.kind == "codes":
            return joined((name_of(self.names, v, lang) for v in value), lang)
        if self.kind == "said":
            return spoken(row, self.key, lang)
        if self.kind == "unit":
            return name_of("unit", value, lang) if value in MEASURED else None
        if self.kind == "bool":
            return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
        if self.kind == "json":
            return value if isinstance(value, str) else dumps(value).decode()
        if self.kind == "datetime":
            # Excel has no time zones: shown in city time, to the second.
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
            return moment.astimezone(CITY_TZ).replace(tzinfo=None, microsecond=0)
        return value  # type: ignore[no-any-return]

    @property
    def type(self) -> Any:
        """The field's type in the API's response model."""
        found = Literal[self.choices] if self.choices else TYPES[self.kind]  # type: ignore[valid-type]
        return found | None if self.nullable else found


#: The columns many lists share, worded once.
DISTRICT = Column("district", "区县", "District", "code", "district")
SECTOR = Column("sector", "行业", "Sector", "code", "sector")
DEPARTMENT = Column("department", "责任部门", "Department", "code", "department")
PROJECT_NAME = Column("name", "项目名称", "Project")


def project_code(key: str = "code") -> Column:
    """The project's code, linked to its page on the console."""
    return Column(key, "项目代码", "Project code", look="project")


def spoken(row: Mapping[str, Any], key: str, lang: str) -> str | None:
    """A text of the domain in the language asked for: by its code and parameters when the row has
    them (`detail_code`, `detail_params`), else the row's text as it is."""
    code = row.get("detail_code")
    return said(code, row.get("detail_params") or {}, lang) if code else row.get(key)


Operator = Literal["=", ">=", "<="]


@dataclass(frozen=True)
class Filter:
    """A query parameter of a listing: named as the API and the console's query string name it."""

    name: str
    type: type = str
    column: str | None = None  # the column it compares; None: the query uses it otherwise (e.g. `as_of`)
    operator: Operator = "="
    ge: Any = None
    le: Any = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[str, ...] | None = None  # the only values it takes
    names: str = ""  # the `name_of` kind of its values, for the console's choice
    offered: tuple[str, ...] | None = None  # a free text the console offers these values of (a choice)
    description: str | None = None
    zh: str = ""  # its label in the console (default: its column's)
    en: str = ""
    size: int = 0  # the console's text box, in characters
    placeholder: str = ""
    today: bool = False  # not given: the city's today (the API states it as null)
    required: bool = False

    @property
    def argument(self) -> str:
        """Its name as a Python parameter (`from` is a keyword)."""
        return f"{self.name}_" if self.name in ("from", "type", "format") else self.name

    def parsed(self, raw: str | None) -> Any:
        """The value of a lenient query string (the console's): None if missing or one the API refuses
        (checked as the API checks it, by the same constraints), surrounding spaces aside."""
        text = (raw or "").strip()
        if not text:
            return None
        try:
            return _checked(self).validate_python(text)
        except ValidationError:
            return None


@cache
def _checked(f: Filter) -> TypeAdapter[Any]:
    """A filter's value checked as the API's query parameter is (`api.listings.parameter`)."""
    base: Any = Literal[f.choices] if f.choices is not None else f.type  # type: ignore[valid-type]
    return TypeAdapter(Annotated[base, Field(ge=f.ge, le=f.le, pattern=f.pattern if f.type is str else None,
                                             min_length=f.min_length, max_length=f.max_length)])


def exactly(name: str, column: str | None = None, **more: Any) -> Filter:
    """A name matched exactly, as stored (a department, user, token, message type or message id)."""
    return Filter(name, str, column or name, **{"min_length": 1, "max_length": 200, "pattern": NO_CONTROLS, **more})


def one_of(name: str, names: str, choices: Any, column: str | None = None, **more: Any) -> Filter:
    """A code of a closed set (a district, a rule), named by `name_of(names, ...)` in the console."""
    return Filter(name, str, column or name, choices=tuple(choices), names=names, **more)


def day(name: str, column: str | None, operator: Operator = "=", **more: Any) -> Filter:
    """A business date (city time) of the business years."""
    return Filter(name, date, column, operator, ge=FIRST_DAY, le=LAST_DAY, **more)


@dataclass(frozen=True)
class Paging:
    """A list read in store order after a position: `after` and `limit` (the console's page is `page` rows)."""

    key: str = "position"
    limit: int = 100
    most: int = 1000
    page: int = 200


#: Rows of a console page of a list that is not read by position (`Paging.page` of one that is).
PAGE_ROWS: Final = 100
#: The kinds of column a console list sorts by (a text said, a JSON body or a list of codes are not).
SORTABLE: Final = frozenset({"text", "int", "number", "money", "area", "energy", "quantity", "rate", "date",
                             "datetime", "code", "unit", "bool"})


@dataclass(frozen=True)
class Order:
    """How a console page sorts and pages a list (`?sort=<column>&order=asc|desc&page=<n>`): by a column of
    its table, ascending or descending (the list's own order if none), its `size` rows of page `page`."""

    sort: str | None = None
    descending: bool = False
    page: int = 1
    size: int = PAGE_ROWS

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def pages(self, count: int) -> int:
        return max(1, -(-count // self.size))


@dataclass(frozen=True)
class Listing:
    """A list: file and sheet names, where its rows are in the JSON answer, its columns and filters."""

    name: str  # ASCII, for the file name
    zh: str
    en: str
    columns: tuple[Column, ...]
    rows: Callable[[dict[str, Any]], list[dict[str, Any]]] | str  # a key of the JSON answer, or how to find them
    filters: tuple[Filter, ...] = ()
    paging: Paging | None = None
    order: tuple[str, ...] = ()  # the sort key of its rows
    item: str = ""  # the API's model of a row (e.g. `AuditEntry`) and of the answer
    response: str = ""
    fields: tuple[Column, ...] = ()  # more fields of each row the API gives, neither downloaded nor shown
    shown: tuple[str | Column, ...] = ()  # the console table's columns (by key), in its order (default: all)
    echo: tuple[str, ...] = ()  # filters the answer states beside its rows (e.g. `as_of`)
    row_look: str = ""  # the key whose value is each console row's class (an alert's level)

    def title(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def rows_of(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return body[self.rows] if isinstance(self.rows, str) else self.rows(body)

    def column(self, key: str) -> Column:
        return next(c for c in (*self.columns, *self.fields) if c.key == key)

    def filter(self, name: str) -> Filter:
        return next(f for f in self.filters if f.name == name)

    def label(self, f: Filter, lang: str) -> str:
        """A filter's label: its own, or its column's."""
        own = f.zh if lang == "zh" else f.en
        key = f.column or f.name
        # A code downloaded twice (as it is, and named) is asked for by its name.
        named = [c for c in (*self.columns, *self.fields) if c.key == key and c.names == f.names]
        return own or (named[0] if named else self.column(key)).label(lang)

    @property
    def sortable(self) -> tuple[str, ...]:
        """The keys of the console table's columns it can be sorted by."""
        return tuple(c.key for c in self.page_columns if c.kind in SORTABLE)

    def ordering(self, query: Mapping[str, str]) -> Order:
        """The console's `sort`, `order` and `page` read leniently (one the list has not: its own order, page 1)."""
        sort = query.get("sort") if query.get("sort") in self.sortable else None
        page = query.get("page") or ""
        number = int(page) if page.isascii() and page.isdigit() and 0 < len(page) < 7 else 1
        return Order(sort, sort is not None and query.get("order") == "desc", max(number, 1),
                     self.paging.page if self.paging is not None else PAGE_ROWS)

    @property
    def page_columns(self) -> tuple[Column, ...]:
        return tuple(k if isinstance(k, Column) else self.column(k) for k in self.shown) if self.shown else self.columns

    @property
    def item_fields(self) -> tuple[Column, ...]:
        """Every field of a row in the API's answer, in the order of the answer's model."""
        found: dict[str, Column] = {}
        for column in (*self.columns, *self.fields):
            found.setdefault(column.key, column)  # a code downloaded twice (as it is and named) is one field
        return tuple(found.values())

    def parsed(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The filters of a lenient query string (the console's): each parsed, a bad one None."""
        return self.defaulted({f.name: f.parsed(query.get(f.name)) for f in self.filters})

    def defaulted(self, asked: Mapping[str, Any]) -> dict[str, Any]:
        """The filters as the query takes them: a date not given that defaults to today is today."""
        return {**asked, **{f.name: city_today() for f in self.filters if f.today and asked.get(f.name) is None}}

    def where(self, asked: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
        """The SQL conditions (and their parameters) of the filters given that compare a column."""
        clauses, params = [], []
        for f in self.filters:
            if f.column is not None and asked.get(f.name) is not None:
                clauses.append(f"{f.column} {f.operator} ?")
                params.append(asked[f.name])
        return clauses, params

    def body(self, rows: list[dict[str, Any]], asked: Mapping[str, Any], after: int = 0) -> dict[str, Any]:
        """The API's answer: what it echoes, its rows, and where a paged list continues."""
        key = self.rows if isinstance(self.rows, str) else self.name
        answer = {**{name: asked[name] for name in self.echo}, key: rows}
        if self.paging is not None:
            answer["next_after"] = rows[-1][self.paging.key] if rows else after
        return answer


@dataclass(frozen=True)
class Tables:
    """A read model's tables in one snapshot: what its query functions read (`view.of(Projection)`)."""

    db: Db
    names: Mapping[str, str]

    def __getitem__(self, table: str) -> str:
        return self.names[table]


def paged(listing: Listing, tables: Tables, table: Table, asked: Mapping[str, Any], after: int,
          limit: int, order: Order | None = None) -> list[dict[str, Any]]:
    """Rows of a table matching the listing's filters, in its order, after a position: a range of an index.
    With an `order` (the console's), its page of the rows sorted by its column instead."""
    assert listing.paging is not None, f"{listing.name} is not paged"
    clauses, params = listing.where(asked)
    if order is not None:
        return [table.decode(r) for r in tables.db.query(
            f"SELECT {', '.join(table.columns)} FROM {tables[table.name]} WHERE {' AND '.join(['1 = 1', *clauses])} "
            f"ORDER BY {sql_order(listing, table, order, tables)} LIMIT ? OFFSET ?",
            [*params, order.size, order.offset])]
    where = " AND ".join([f"{listing.paging.key} > ?", *clauses])
    rows = tables.db.query(f"SELECT {', '.join(table.columns)} FROM {tables[table.name]} WHERE {where} "
                           f"ORDER BY {', '.join(listing.order)} LIMIT ?", [after, *params, limit])
    return [table.decode(r) for r in rows]


def sql_order(listing: Listing, table: Table, order: Order, tables: Tables) -> str:
    """ORDER BY of a console page: its column (if the table has it, or the name of a project code it has: a
    key checked against the declaration, never the query's text), then the list's own order to break ties."""
    own = ", ".join(listing.order)
    named = next((c.name_of_code for c in (*listing.columns, *listing.fields)
                  if c.key == order.sort and c.name_of_code in table.columns), "")
    if named:
        sort = f"(SELECT name FROM {tables['names']} WHERE code = {named})"
    elif order.sort is not None and order.sort in table.columns:
        sort = order.sort
    else:
        return own
    direction = "DESC" if order.descending else "ASC"
    return f"{sort} IS NULL, {sort} {direction}, {own}"


def counted(listing: Listing, tables: Tables, table: Table, asked: Mapping[str, Any]) -> int:
    """How many rows of a table match the listing's filters (the console's count above its pages)."""
    clauses, params = listing.where(asked)
    found = tables.db.query(f"SELECT COUNT(*) FROM {tables[table.name]} WHERE {' AND '.join(['1 = 1', *clauses])}",
                            params)
    return int(found[0][0])


def in_order(rows: list[dict[str, Any]], order: Order) -> list[dict[str, Any]]:
    """A list read whole, sorted as a console page asks (stable: ties keep the list's order; nulls last)."""
    if order.sort is None:
        return rows
    key = order.sort
    given = [r for r in rows if r.get(key) is not None and r.get(key) != ""]
    missing = [r for r in rows if r.get(key) is None or r.get(key) == ""]
    return sorted(given, key=lambda r: r[key], reverse=order.descending) + missing
