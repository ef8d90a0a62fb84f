"""The cockpit (驾驶舱): what the overview counts, as running totals by business day, so that any figure
as of any day — and at each month's end of a year — is one sum over a small table, not a scan of projects.

Each measure (`projects`, `stage.construction`, `granted.land.2026`, ...) keeps, per district and business
day, how much it changed that day: its value as of a day is the sum of its changes up to that day. The
business day is the one the event says (registered, admitted, started, paid on...), never the day it was
recorded: a figure as of March is what was so in March.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from domain import reference
from domain.project import GRANT_EVENTS, Project
from projections.listing import Tables
from projections.model import SUBJECT, Projection, Table, amount, key_of

#: Per measure, district and business day: the change of the measure that day.
DAILY = Table("daily", {"measure": "TEXT", "district": "TEXT", "day": "DATE", "value": "NUMERIC"},
              key=("measure", "district", "day"), indexes=(("day",),))
#: What the handlers need to know of each project to count its changes.
#: `land` and `energy`: the quantity of each the project holds (granted, not reclaimed).
PROJECTS = Table("projects", {"code": "TEXT", "district": "TEXT", "stage": "TEXT", "total_investment": "NUMERIC",
                              "started": "INTEGER", "cancelled": "INTEGER", "land": "NUMERIC", "energy": "NUMERIC"},
                 key=("code",))
#: The library stays open per project (an admission to a library it is in already counts once).
OPEN = Table("open", {"code": "TEXT", "library": "TEXT"}, key=("code", "library"))
#: Each grant with a quantity: its factor, plan year (the ledger's) and whether it is still held.
GRANTS = Table("grants", {"grant_id": "TEXT", "factor": "TEXT", "year": "INTEGER", "quantity": "NUMERIC",
                          "live": "INTEGER"}, key=("grant_id",))
#: The values that later messages correct: a year's plan, a month's report.
PLANS = Table("plans", {"code": "TEXT", "year": "INTEGER", "planned": "NUMERIC"}, key=("code", "year"))
REPORTS = Table("reports", {"code": "TEXT", "period": "TEXT", "completed": "NUMERIC"}, key=("code", "period"))
#: The factors whose use is their project's construction (land and energy lie idle until it starts).
USED_BY_STARTING = ("land", "energy")


class Cockpit(Projection):
    name = "cockpit"
    version = 1
    tables = (DAILY, PROJECTS, OPEN, GRANTS, PLANS, REPORTS)
    handlers = {
        Project.Registered: "registered", Project.StageAdvanced: "advanced", Project.ConstructionStarted: "started",
        Project.Cancelled: "cancelled", Project.Admitted: "admitted", Project.Released: "released",
        Project.PlanSet: "plan_set", Project.InvestmentReported: "reported", Project.FactorReclaimed: "reclaimed",
        Project.FundsDisbursed: "disbursed", Project.Amended: "amended", **{cls: "granted" for cls in GRANT_EVENTS},
    }
    lookups = {"projects": SUBJECT, "grants": key_of("grant_id"), "open": key_of("audit.subject", "library"),
               "plans": key_of("audit.subject", "year"), "reports": key_of("audit.subject", "period")}

    def _add(self, measure: str, district: str, day: date, value: Decimal | int) -> None:
        if not value:
            return
        daily = self.rows["daily"]
        row = daily.get(measure, district, day)
        total = (row["value"] if row else Decimal(0)) + Decimal(value)
        daily.put({"measure": measure, "district": district, "day": day, "value": total})

    def _project(self, code: str) -> dict[str, Any]:
        project = self.rows["projects"].get(code)
        assert project is not None, f"{code} before it was registered"
        return project

    def registered(self, e: Any) -> None:
        self.rows["projects"].put({"code": e.code, "district": e.district, "stage": "planning",
                                   "total_investment": e.total_investment, "started": 0, "cancelled": 0,
                                   **{f: Decimal(0) for f in USED_BY_STARTING}})
        day = e.audit.business_date
        self._add("projects", e.district, day, 1)
        self._add("investment", e.district, day, e.total_investment)
        self._add("stage.planning", e.district, day, 1)

    def advanced(self, e: Any) -> None:
        project = self._project(e.audit.subject)
        if not project["cancelled"]:
            self._add(f"stage.{project['stage']}", project["district"], e.audit.business_date, -1)
            self._add(f"stage.{e.stage}", project["district"], e.audit.business_date, 1)
        self.rows["projects"].put({**project, "stage": e.stage})

    def amended(self, e: Any) -> None:
        # An amended total investment replaces the registered one from the day of the amendment.
        project = self._project(e.audit.subject)
        if e.total_investment is None:
            return
        if not project["cancelled"]:
            self._add("investment", project["district"], e.audit.business_date,
                      e.total_investment - project["total_investment"])
        self.rows["projects"].put({**project, "total_investment": e.total_investment})

    def started(self, e: Any) -> None:
        project = self._project(e.audit.subject)
        if project["started"] or project["cancelled"]:
            return
        self.rows["projects"].put({**project, "started": 1})
        self._add("started", project["district"], e.date, 1)
        # Land and energy held when construction starts are in use from that day.
        for factor in USED_BY_STARTING:
            self._add(f"used.{factor}", project["district"], e.date, project[factor])

    def cancelled(self, e: Any) -> None:
        project = self._project(e.audit.subject)
        if project["cancelled"]:
            return
        day, district = e.audit.business_date, project["district"]
        self._add("projects", district, day, -1)
        self._add("investment", district, day, -project["total_investment"])
        self._add(f"stage.{project['stage']}", district, day, -1)
        if project["started"]:
            self._add("started", district, day, -1)
        self.rows["projects"].put({**project, "cancelled": 1})

    def admitted(self, e: Any) -> None:
        if self.rows["open"].get(e.audit.subject, e.library) is None:
            self.rows["open"].put({"code": e.audit.subject, "library": e.library})
            self._add(f"library.{e.library}", self._project(e.audit.subject)["district"], e.audit.business_date, 1)

    def released(self, e: Any) -> None:
        if self.rows["open"].get(e.audit.subject, e.library) is not None:
            self.rows["open"].delete(e.audit.subject, e.library)
            self._add(f"library.{e.library}", self._project(e.audit.subject)["district"], e.audit.business_date, -1)

    def plan_set(self, e: Any) -> None:
        # A later plan for the year replaces the earlier one from its day on.
        before = self.rows["plans"].get(e.audit.subject, e.year)
        self.rows["plans"].put({"code": e.audit.subject, "year": e.year, "planned": e.planned_investment})
        change = e.planned_investment - (before["planned"] if before else Decimal(0))
        self._add(f"planned.{e.year}", self._project(e.audit.subject)["district"], e.audit.business_date, change)

    def reported(self, e: Any) -> None:
        # A second report for a month corrects the first, from the day it was made.
        before = self.rows["reports"].get(e.audit.subject, e.period)
        self.rows["reports"].put({"code": e.audit.subject, "period": e.period, "completed": e.completed})
        change = e.completed - (before["completed"] if before else Decimal(0))
        self._add(f"completed.{e.period[:4]}", self._project(e.audit.subject)["district"], e.audit.business_date,
                  change)

    def granted(self, e: Any) -> None:
        factor, quantity = GRANT_EVENTS[type(e)]
        if quantity is None or getattr(e, quantity) is None:
            return  # counted by number (data, talent...): no quantity to use up
        project = self._project(e.audit.subject)
        year, value, day = getattr(e, "year", e.audit.business_date.year), getattr(e, quantity), e.audit.business_date
        self.rows["grants"].put({"grant_id": e.audit.message_id, "factor": factor, "year": year, "quantity": value,
                                 "live": 1})
        self._hold(project, factor, day, value)
        self._add(f"granted.{factor}.{year}", project["district"], day, value)

    def _hold(self, project: dict[str, Any], factor: str, day: date, value: Decimal) -> None:
        """A grant (value > 0) or its reclaiming (< 0): in the factor's running total, and in use at once if
        its project's construction has started."""
        self._add(f"granted.{factor}", project["district"], day, value)
        if factor in USED_BY_STARTING:
            self.rows["projects"].put({**project, factor: project[factor] + value})
            if project["started"]:
                self._add(f"used.{factor}", project["district"], day, value)

    def reclaimed(self, e: Any) -> None:
        grant = self.rows["grants"].get(e.grant_id)
        if grant is None or not grant["live"]:
            return
        project, day = self._project(e.audit.subject), e.audit.business_date
        self.rows["grants"].put({**grant, "live": 0})
        self._hold(project, grant["factor"], day, -grant["quantity"])
        self._add(f"granted.{grant['factor']}.{grant['year']}", project["district"], day, -grant["quantity"])

    def disbursed(self, e: Any) -> None:
        grant = self.rows["grants"].get(e.grant_id)
        if grant is not None:
            self._add(f"used.{grant['factor']}", self._project(e.audit.subject)["district"], e.date, e.amount)


# --- queries -------------------------------------------------------------------------------------


def running(tables: Tables, days: Sequence[date], measures: Iterable[str] | None = None,
            by_district: bool = False) -> dict[tuple[str, str | None], list[Decimal]]:
    """Each measure's value at the end of each of `days` (all measures, or those named), in one pass over the
    table: (measure, district or None) → a value per day."""
    if not days:
        return {}
    sums = ", ".join("SUM(CASE WHEN day <= ? THEN value ELSE 0 END)" for _ in days)
    where, params = ["day <= ?"], [max(days)]
    if measures is not None:
        scope, among = tables.db.among("measure", sorted(set(measures)))
        where.append(scope)
        params += among
    group = "measure, district" if by_district else "measure"
    rows = tables.db.query(f"SELECT {group}, {sums} FROM {tables['daily']} WHERE {' AND '.join(where)} "
                           f"GROUP BY {group}", [*days, *params])
    found: dict[tuple[str, str | None], list[Decimal]] = {}
    for row in rows:
        measure, district, values = (row[0], row[1], row[2:]) if by_district else (row[0], None, row[1:])
        found[(measure, district)] = [amount(v) for v in values]
    return found


def quotas(ledger: Tables, year: int, factor: str) -> dict[str, Decimal]:
    """The factor ledger's quota (年度指标) of each district for `year`, where one was set."""
    return {district: amount(quota) for district, quota in ledger.db.query(
        f"SELECT district, SUM(quota) FROM {ledger['pools']} WHERE year = ? AND factor = ? GROUP BY district",
        [year, factor])}


def stage_measures() -> list[str]:
    return [f"stage.{s}" for s in reference.STAGES]


def library_measures() -> list[str]:
    return [f"library.{lib}" for lib in reference.LIBRARIES]


def values_on(found: Mapping[tuple[str, str | None], list[Decimal]], measure: str, n: int = -1) -> Decimal:
    """A measure's value at the `n`-th day asked (the last by default); 0 when nothing changed it."""
    values = found.get((measure, None))
    return values[n] if values else Decimal(0)
