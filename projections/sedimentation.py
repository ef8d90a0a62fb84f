"""The facts supervision needs (要素沉淀), so alerts are answered from the read model.

The rules themselves are the pure functions of `domain.supervision`; this read model only keeps,
per project, the business dates they look at.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from domain.project import GRANT_EVENTS, Project, is_leader
from domain.reduction import EmissionReduction
from domain.supervision import (
    Alert,
    GrantFact,
    IssueFact,
    LibraryFact,
    PlanFact,
    ProjectFacts,
    ReductionFact,
    ReportFact,
    Thresholds,
    evaluate,
)
from projections.db import Db
from projections.model import Projection, Table

FACTS = Table("facts", {"code": "TEXT", "name": "TEXT", "district": "TEXT", "department": "TEXT",
                        "registered_on": "DATE", "planned_start": "DATE", "started_on": "DATE", "completed_on": "DATE",
                        "cancelled_on": "DATE"},
              key=("code",), indexes=(("district",),))
GRANTS = Table("grants", {"grant_id": "TEXT", "code": "TEXT", "factor": "TEXT", "granted_on": "DATE",
                          "reclaimed_on": "DATE", "reduction_id": "TEXT", "leader": "TEXT"},
               key=("grant_id",), indexes=(("code",),))
PLANS = Table("plans", {"code": "TEXT", "position": "BIGINT", "year": "INTEGER", "planned": "NUMERIC", "set_on": "DATE"},
              key=("code", "position"))
REPORTS = Table("reports", {"code": "TEXT", "position": "BIGINT", "period": "TEXT", "completed": "NUMERIC",
                            "reported_on": "DATE"}, key=("code", "position"))
ISSUES = Table("issues", {"code": "TEXT", "issue_id": "TEXT", "title": "TEXT", "resolved_on": "DATE"},
               key=("code", "issue_id"))
ESCALATIONS = Table("escalations", {"code": "TEXT", "position": "BIGINT", "issue_id": "TEXT", "escalated_on": "DATE",
                                    "due_date": "DATE"}, key=("code", "position"))
REDUCTIONS = Table("reductions", {"reduction_id": "TEXT", "due_date": "DATE", "completed_on": "DATE"},
                   key=("reduction_id",))
#: Stays in reserve libraries, and which are open per project and library (a release ends them all).
STAYS = Table("stays", {"code": "TEXT", "position": "BIGINT", "library": "TEXT", "year": "INTEGER",
                        "admitted_on": "DATE", "released_on": "DATE"}, key=("code", "position"))
OPEN_STAYS = Table("open_stays", {"code": "TEXT", "library": "TEXT", "positions": "TEXT"}, key=("code", "library"))


class Sedimentation(Projection):
    name = "sedimentation"
    version = 2  # 2: reports keep the day they were made (business time), not just the last value
    tables = (FACTS, GRANTS, PLANS, REPORTS, ISSUES, ESCALATIONS, REDUCTIONS, STAYS, OPEN_STAYS)
    handlers = {
        Project.Registered: "registered", Project.PlanSet: "plan_set", Project.InvestmentReported: "reported",
        Project.ConstructionStarted: "started", Project.Completed: "completed", Project.Cancelled: "cancelled",
        Project.FactorReclaimed: "reclaimed", Project.IssueEscalated: "escalated", Project.IssueResolved: "resolved",
        Project.Admitted: "admitted", Project.Released: "released",
        EmissionReduction.Registered: "reduction_registered", EmissionReduction.Completed: "reduction_completed",
        **{cls: "granted" for cls in GRANT_EVENTS},
    }

    def registered(self, e: Any) -> None:
        self.rows["facts"].put({"code": e.code, "name": e.name, "district": e.district, "department": e.department,
                                "registered_on": e.audit.business_date, "planned_start": e.planned_start,
                                "started_on": None, "completed_on": None, "cancelled_on": None})

    def plan_set(self, e: Any) -> None:
        self.rows["plans"].put({"code": e.audit.subject, "position": self.position, "year": e.year,
                                "planned": e.planned_investment, "set_on": e.audit.business_date})

    def reported(self, e: Any) -> None:
        self.rows["reports"].put({"code": e.audit.subject, "position": self.position, "period": e.period,
                                  "completed": e.completed, "reported_on": e.audit.business_date})

    def started(self, e: Any) -> None:
        self.rows["facts"].update(e.audit.subject, started_on=e.date)

    def completed(self, e: Any) -> None:
        self.rows["facts"].update(e.audit.subject, completed_on=e.date)

    def cancelled(self, e: Any) -> None:
        self.rows["facts"].update(e.audit.subject, cancelled_on=e.audit.business_date)

    def granted(self, e: Any) -> None:
        factor, _ = GRANT_EVENTS[type(e)]
        self.rows["grants"].put({"grant_id": e.audit.message_id, "code": e.audit.subject, "factor": factor,
                                 "granted_on": e.audit.business_date, "reclaimed_on": None,
                                 "reduction_id": getattr(e, "reduction_id", None),
                                 "leader": e.person if is_leader(getattr(e, "role", None)) else None})

    def reclaimed(self, e: Any) -> None:
        self.rows["grants"].update(e.grant_id, reclaimed_on=e.audit.business_date)

    def escalated(self, e: Any) -> None:
        code = e.audit.subject
        if self.rows["issues"].get(code, e.issue_id) is None:
            self.rows["issues"].put({"code": code, "issue_id": e.issue_id, "title": e.title, "resolved_on": None})
        self.rows["escalations"].put({"code": code, "position": self.position, "issue_id": e.issue_id,
                                      "escalated_on": e.audit.business_date, "due_date": e.due_date})

    def resolved(self, e: Any) -> None:
        self.rows["issues"].update(e.audit.subject, e.issue_id, resolved_on=e.audit.business_date)

    def admitted(self, e: Any) -> None:
        code = e.audit.subject
        self.rows["stays"].put({"code": code, "position": self.position, "library": e.library, "year": e.year,
                                "admitted_on": e.audit.business_date, "released_on": None})
        open_stays = self.rows["open_stays"].get(code, e.library)
        positions = f"{open_stays['positions']},{self.position}" if open_stays else str(self.position)
        self.rows["open_stays"].put({"code": code, "library": e.library, "positions": positions})

    def released(self, e: Any) -> None:
        code = e.audit.subject
        open_stays = self.rows["open_stays"].get(code, e.library)
        for position in (open_stays["positions"].split(",") if open_stays else ()):
            self.rows["stays"].update(code, int(position), released_on=e.audit.business_date)
        self.rows["open_stays"].delete(code, e.library)

    def reduction_registered(self, e: Any) -> None:
        self.rows["reductions"].put({"reduction_id": e.reduction_id, "due_date": e.due_date, "completed_on": None})

    def reduction_completed(self, e: Any) -> None:
        self.rows["reductions"].update(e.audit.subject, completed_on=e.audit.business_date)


def load_facts(db: Db, t: dict[str, str], district: str | None = None, code: str | None = None) -> list[ProjectFacts]:
    """Every project's facts (of one district, or the one project, if given), in a handful of queries."""
    scope, params = ("WHERE district = ?", [district]) if district else ("WHERE code = ?", [code]) if code else ("", [])
    facts = [FACTS.decode(r) for r in db.query(f"SELECT {', '.join(FACTS.columns)} FROM {t['facts']} {scope}", params)]
    codes = {f["code"] for f in facts}

    def rows(table: Table) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        order = ", ".join(table.key)
        for raw in db.query(f"SELECT {', '.join(table.columns)} FROM {t[table.name]} ORDER BY {order}"):
            row = table.decode(raw)
            if row["code"] in codes:
                grouped[row["code"]].append(row)
        return grouped

    grants, plans, reports, issues = rows(GRANTS), rows(PLANS), rows(REPORTS), rows(ISSUES)
    escalations, stays = rows(ESCALATIONS), rows(STAYS)
    reductions = {r["reduction_id"]: ReductionFact(**r) for r in (
        REDUCTIONS.decode(raw) for raw in db.query(f"SELECT {', '.join(REDUCTIONS.columns)} FROM {t['reductions']}"))}
    result = []
    for f in facts:
        code = f["code"]
        project_grants = tuple(GrantFact(g["grant_id"], g["factor"], g["granted_on"], g["reclaimed_on"],
                                         g["reduction_id"], g["leader"]) for g in grants[code])
        used = {g.reduction_id for g in project_grants if g.reduction_id}
        result.append(ProjectFacts(
            **f,
            grants=project_grants,
            plans=tuple(PlanFact(p["year"], p["planned"], p["set_on"]) for p in plans[code]),
            reports=tuple(ReportFact(r["period"], r["completed"], r["reported_on"]) for r in reports[code]),
            issues=tuple(IssueFact(i["issue_id"], i["title"],
                                   tuple((e["escalated_on"], e["due_date"]) for e in escalations[code]
                                         if e["issue_id"] == i["issue_id"]), i["resolved_on"])
                         for i in issues[code]),
            reductions={r: reductions[r] for r in used if r in reductions},
            libraries=tuple(LibraryFact(s["library"], s["year"], s["admitted_on"], s["released_on"])
                            for s in stays[code]),
        ))
    return result


def alerts(db: Db, t: dict[str, str], as_of: date, thresholds: Thresholds, *, district: str | None = None,
           level: str | None = None, rule: str | None = None, department: str | None = None) -> list[Alert]:
    return alerts_of(load_facts(db, t, district), as_of, thresholds, level=level, rule=rule, department=department)


def alerts_of(facts: list[ProjectFacts], as_of: date, thresholds: Thresholds, *, level: str | None = None,
              rule: str | None = None, department: str | None = None) -> list[Alert]:
    """The alerts of these projects on `as_of`, filtered, in the order lists show them."""
    found = [a for f in facts for a in evaluate(f, as_of, thresholds)]
    return sorted((a for a in found if (level is None or a.level == level) and (rule is None or a.rule == rule)
                   and (department is None or a.department == department)),
                  key=lambda a: (a.district, a.project_code, a.rule, a.ref or ""))


def alert_json(project_code: str, rule: str, ref: str | None, level: str | None, since: date | None, detail: str,
               **more: Any) -> dict[str, Any]:
    """An alert as `GET /v1/alerts` and the monitor's messages on `yaosu.alerts.v1` show it."""
    return {"project_code": project_code, "rule": rule, "ref": ref, "level": level, "since": since, "detail": detail,
            **more}
