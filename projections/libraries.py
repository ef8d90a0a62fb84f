"""Reserve libraries (项目储备库): members by district (一纵) and department (一横)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.project import Project
from projections.db import Db
from projections.model import Projection, Table, amount

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


FILTERS = ("district", "sector", "department")


def members(db: Db, t: dict[str, str], library: str, filters: dict[str, str | None]) -> dict[str, Any]:
    where, params = ["library = ?"], [library]
    for column in FILTERS:
        if filters.get(column):
            where.append(f"{column} = ?")
            params.append(filters[column])
    rows = db.query(f"SELECT {', '.join(MEMBERS.columns)} FROM {t['members']} WHERE {' AND '.join(where)} "
                    "ORDER BY district, code", params)
    found = [MEMBERS.decode(r) for r in rows]
    return {"library": library, "filters": {k: v for k, v in filters.items() if v},
            "members": found,
            "totals": {"projects": len(found),
                       "total_investment": amount(sum((m["total_investment"] for m in found), Decimal(0)))}}


def matrix(db: Db, t: dict[str, str], library: str) -> dict[str, Any]:
    rows = db.query(f"SELECT district, sector, COUNT(*), SUM(total_investment) FROM {t['members']} "
                    "WHERE library = ? GROUP BY district, sector ORDER BY district, sector", [library])
    cells = [{"district": d, "sector": s, "projects": n, "total_investment": amount(v)} for d, s, n, v in rows]
    return {"library": library, "cells": cells,
            "totals": {"projects": sum(c["projects"] for c in cells),
                       "total_investment": amount(sum((c["total_investment"] for c in cells), Decimal(0)))}}


def counts(db: Db, t: dict[str, str]) -> dict[str, int]:
    """Members of each library."""
    return {library: n for library, n in db.query(f"SELECT library, COUNT(*) FROM {t['members']} GROUP BY library")}

