"""Reserve libraries (项目储备库): members by district (一纵) and department (一横)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from domain import reference
from domain.project import Project
from projections.listing import (
    DEPARTMENT,
    DISTRICT,
    PROJECT_NAME,
    SECTOR,
    Column,
    Listing,
    Tables,
    one_of,
    project_code,
)
from projections.model import SUBJECT, Projection, Table, amount

PROJECT = Table("projects", {"code": "TEXT", "name": "TEXT", "district": "TEXT", "sector": "TEXT",
                             "department": "TEXT", "total_investment": "NUMERIC"}, key=("code",))
MEMBERS = Table(
    "members",
    {"library": "TEXT", "code": "TEXT", "name": "TEXT", "district": "TEXT", "sector": "TEXT", "department": "TEXT",
     "total_investment": "NUMERIC", "admitted_on": "DATE", "year": "INTEGER", "opinion": "TEXT"},
    key=("library", "code"),
    indexes=(("library", "district"), ("library", "sector"), ("library", "department")),
)


class Libraries(Projection):
    name = "libraries"
    version = 1
    tables = (PROJECT, MEMBERS)
    handlers = {Project.Registered: "registered", Project.Admitted: "admitted", Project.Released: "released"}
    lookups = {"projects": SUBJECT}

    def registered(self, e: Any) -> None:
        self.rows["projects"].put({"code": e.code, "name": e.name, "district": e.district, "sector": e.sector,
                                   "department": e.department, "total_investment": e.total_investment})

    def admitted(self, e: Any) -> None:
        project = self.rows["projects"].get(e.audit.subject)
        assert project is not None, "admitted before registered"
        self.rows["members"].put({**project, "library": e.library, "admitted_on": e.audit.business_date,
                                  "year": e.year, "opinion": e.opinion})

    def released(self, e: Any) -> None:
        self.rows["members"].delete(e.library, e.audit.subject)


#: A library's members, as `GET /v1/libraries/{library}`, its download and the console's library page show them.
LISTING = Listing(
    "library", "项目储备库", "Reserve library", rows="members", item="Member",
    columns=(
        Column("library", "项目库", "Library", "code", "library"),
        project_code(),
        PROJECT_NAME,
        DISTRICT,
        SECTOR,
        DEPARTMENT,
        Column("total_investment", "总投资", "Total investment", "money"),
        Column("admitted_on", "入库日期", "Admitted on", "date"),
        Column("year", "计划年度", "Plan year", "int", nullable=True),
        Column("opinion", "入库意见", "Opinion", nullable=True)),
    filters=(one_of("district", "district", reference.DISTRICTS), one_of("sector", "sector", reference.SECTORS),
             one_of("department", "department", reference.DEPARTMENTS)),
    order=("district", "code"),
    shown=("code", "name", "district", "sector", "department", "total_investment", "admitted_on", "year"))


def members(tables: Tables, library: str, asked: Mapping[str, Any]) -> dict[str, Any]:
    """`LISTING`: the members of a library matching the filters given, with their totals."""
    clauses, params = LISTING.where(asked)
    rows = tables.db.query(f"SELECT {', '.join(MEMBERS.columns)} FROM {tables['members']} "
                           f"WHERE {' AND '.join(['library = ?', *clauses])} ORDER BY {', '.join(LISTING.order)}",
                           [library, *params])
    found = [MEMBERS.decode(r) for r in rows]
    return {"library": library, "filters": {k: v for k, v in asked.items() if v},
            "members": found,
            "totals": {"projects": len(found),
                       "total_investment": amount(sum((m["total_investment"] for m in found), Decimal(0)))}}


def matrix(tables: Tables, library: str) -> dict[str, Any]:
    rows = tables.db.query(f"SELECT district, sector, COUNT(*), SUM(total_investment) FROM {tables['members']} "
                    "WHERE library = ? GROUP BY district, sector ORDER BY district, sector", [library])
    cells = [{"district": d, "sector": s, "projects": n, "total_investment": amount(v)} for d, s, n, v in rows]
    return {"library": library, "cells": cells,
            "totals": {"projects": sum(c["projects"] for c in cells),
                       "total_investment": amount(sum((c["total_investment"] for c in cells), Decimal(0)))}}


def counts(tables: Tables) -> dict[str, int]:
    """Members of each library."""
    return {library: n for library, n in tables.db.query(
        f"SELECT library, COUNT(*) FROM {tables['members']} GROUP BY library")}

