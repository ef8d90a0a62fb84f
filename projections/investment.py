"""Investment statistics (投资统计): planned and completed investment by sector or district, per year."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.project import Project
from projections.db import Db
from projections.model import SUBJECT, Projection, Table, amount

PROJECTS = Table("projects", {"code": "TEXT", "district": "TEXT", "sector": "TEXT"}, key=("code",))
PLANS = Table("plans", {"code": "TEXT", "year": "INTEGER", "district": "TEXT", "sector": "TEXT", "planned": "NUMERIC"},
              key=("code", "year"), indexes=(("year",),))
MONTHS = Table("months", {"code": "TEXT", "period": "TEXT", "year": "INTEGER", "district": "TEXT", "sector": "TEXT",
                          "completed": "NUMERIC"}, key=("code", "period"), indexes=(("year",),))


class Investment(Projection):
    name = "investment"
    version = 1
    tables = (PROJECTS, PLANS, MONTHS)
    handlers = {Project.Registered: "registered", Project.PlanSet: "plan_set",
                Project.InvestmentReported: "reported"}
    lookups = {"projects": SUBJECT}

    def registered(self, e: Any) -> None:
        self.rows["projects"].put({"code": e.code, "district": e.district, "sector": e.sector})

    def _dims(self, code: str) -> dict[str, Any]:
        project = self.rows["projects"].get(code)
        assert project is not None
        return project

    def plan_set(self, e: Any) -> None:
        self.rows["plans"].put({**self._dims(e.audit.subject), "year": e.year, "planned": e.planned_investment})

    def reported(self, e: Any) -> None:
        # A second report for a month corrects the first.
        self.rows["months"].put({**self._dims(e.audit.subject), "period": e.period, "year": int(e.period[:4]),
                                 "completed": e.completed})


def statistics(db: Db, t: dict[str, str], by: str, year: int | None) -> dict[str, Any]:
    assert by in ("sector", "district")
    where, params = ("WHERE year = ?", [year]) if year is not None else ("", [])
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for table, column in ((t["plans"], "planned"), (t["months"], "completed")):
        for group, y, total in db.query(f"SELECT {by}, year, SUM({column}) FROM {table} {where} GROUP BY {by}, year",
                                        params):
            entry = cells.setdefault((group, y), {by: group, "year": y, "planned": Decimal(0), "completed": Decimal(0)})
            entry[column] = amount(total)
    rows = sorted(cells.values(), key=lambda c: (c["year"], c[by]))
    for row in rows:
        row["share"] = round(float(row["completed"] / row["planned"]), 4) if row["planned"] else None
    return {"by": by, "year": year, "rows": rows}
