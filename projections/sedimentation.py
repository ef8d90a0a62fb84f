"""The facts supervision needs (要素沉淀), and every project's alert timeline, so that alerts on any
business date are a range query on an index.

The rules themselves are the pure functions of `domain.supervision`: this read model keeps, per
project, the business dates they look at, and the stretches `domain.supervision.timeline` derives
from them, computed again for the projects a batch changed. While a backlog is applied (a rebuild,
a burst) those projects are only marked, and the query evaluates the marked ones from their facts
directly, so an answer is exact at its position whatever is still to settle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any, Collection, Iterable, Mapping, Sequence

import orjson

from domain import reference
from domain.approval import LandApproval
from domain.project import GRANT_EVENTS, STATUSES, Project, is_leader, project_status
from domain.ranking import DistrictScore, Share, Tally, allocation_advice, member_of, rank_tallies, standings
from domain.reduction import EmissionReduction
from domain.supervision import (
    APPROVAL_DEPARTMENT,
    DETAILS,
    FACTOR_RULES,
    LEVELS,
    RULES,
    Alert,
    ApprovalFact,
    CaseFact,
    GrantFact,
    IssueFact,
    LibraryFact,
    PlanFact,
    ProjectFacts,
    ReductionFact,
    ReportFact,
    Stretch,
    Thresholds,
    approval_timeline,
    counted_from,
    evaluate,
    evaluate_approval,
    timeline,
)
from domain.texts import Detail
from infra.catalogue import detail_json, edition, said, said_around
from infra.settings import Settings
from projections.db import Db
from projections.directory import names_in
from projections.listing import DISTRICT, Column, Filter, Listing, Tables, day, one_of, project_code
from projections.model import Appended, Projection, Rows, Table, amount

FACTS = Table("facts", {"code": "TEXT", "name": "TEXT", "district": "TEXT", "department": "TEXT",
                        "registered_on": "DATE", "planned_start": "DATE", "started_on": "DATE", "completed_on": "DATE",
                        "cancelled_on": "DATE", "stretches": "INTEGER", "standings": "INTEGER"},
              key=("code",), indexes=(("district",),))
#: `quantity`, `source` (of funds) and `start_by` (of land): v1.2.
GRANTS = Table("grants", {"grant_id": "TEXT", "code": "TEXT", "factor": "TEXT", "granted_on": "DATE",
                          "reclaimed_on": "DATE", "reduction_id": "TEXT", "leader": "TEXT", "quantity": "NUMERIC",
                          "source": "TEXT", "start_by": "DATE"},
               key=("grant_id",), indexes=(("code",), ("reduction_id",)))
#: Payments out of funds (资金拨付), on the day each was made (its `date`).
DISBURSEMENTS = Table("disbursements", {"code": "TEXT", "position": "BIGINT", "grant_id": "TEXT", "paid_on": "DATE",
                                        "amount": "NUMERIC"}, key=("code", "position"), appends=True)
#: Amendments of the planned start (项目调整): from the day each took effect.
AMENDMENTS = Table("amendments", {"code": "TEXT", "position": "BIGINT", "amended_on": "DATE", "planned_start": "DATE"},
                   key=("code", "position"), appends=True)
#: Supervision cases (督办), and each response (反馈) to them.
CASES = Table("cases", {"code": "TEXT", "case_id": "TEXT", "rule": "TEXT", "grant_id": "TEXT", "responsible": "TEXT",
                        "assigned_on": "DATE", "due_date": "DATE", "closed_on": "DATE", "outcome": "TEXT"},
              key=("code", "case_id"))
RESPONSES = Table("responses", {"code": "TEXT", "position": "BIGINT", "case_id": "TEXT", "responded_on": "DATE"},
                  key=("code", "position"), appends=True)
#: Land approved (批次用地), and the land supplied out of each approval (`approval_id` of a `land.supplied`).
APPROVALS = Table("approvals", {"approval_id": "TEXT", "district": "TEXT", "area": "NUMERIC", "approved_on": "DATE",
                                "stretches": "INTEGER"}, key=("approval_id",), indexes=(("district",),))
DRAWS = Table("draws", {"approval_id": "TEXT", "grant_id": "TEXT", "code": "TEXT", "area": "NUMERIC",
                        "drawn_on": "DATE"}, key=("approval_id", "grant_id"))
PLANS = Table("plans", {"code": "TEXT", "position": "BIGINT", "year": "INTEGER", "planned": "NUMERIC", "set_on": "DATE"},
              key=("code", "position"), appends=True)
REPORTS = Table("reports", {"code": "TEXT", "position": "BIGINT", "period": "TEXT", "completed": "NUMERIC",
                            "reported_on": "DATE"}, key=("code", "position"), appends=True)
ISSUES = Table("issues", {"code": "TEXT", "issue_id": "TEXT", "title": "TEXT", "resolved_on": "DATE"},
               key=("code", "issue_id"))
ESCALATIONS = Table("escalations", {"code": "TEXT", "position": "BIGINT", "issue_id": "TEXT", "escalated_on": "DATE",
                                    "due_date": "DATE"}, key=("code", "position"), appends=True)
REDUCTIONS = Table("reductions", {"reduction_id": "TEXT", "due_date": "DATE", "completed_on": "DATE"},
                   key=("reduction_id",))
#: Stays in reserve libraries, and which are open per project and library (a release ends them all).
STAYS = Table("stays", {"code": "TEXT", "position": "BIGINT", "library": "TEXT", "year": "INTEGER",
                        "admitted_on": "DATE", "released_on": "DATE"}, key=("code", "position"))
OPEN_STAYS = Table("open_stays", {"code": "TEXT", "library": "TEXT", "positions": "TEXT"}, key=("code", "library"))
#: The alert timeline: `domain.supervision.Stretch` rows, numbered per subject (`facts.stretches` of a project,
#: `approvals.stretches` of an approval, whose stretches have no `code`).
#: Each also keeps what `GET /v1/alerts` says of it but for the days counted (`listed_alerts`): the project's
#: name, its detail's code, its params and the English words around the count (`detail`: JSON, the two as
#: a pair; the words as `infra.catalogue.said_around` gives them) and the day the count runs from
#: (`domain.supervision.counted_from`); and a digest of those (`rev`), which names its item on a day.
STRETCHES = Table("stretches", {"subject": "TEXT", "n": "INTEGER", "code": "TEXT", "rule": "TEXT", "ref": "TEXT",
                                "level": "TEXT", "since": "DATE", "first_day": "DATE", "last_day": "DATE",
                                "about": "TEXT", "leader": "TEXT", "district": "TEXT", "department": "TEXT",
                                "grant_id": "TEXT", "factor": "TEXT", "reclaimable": "INTEGER", "case_id": "TEXT",
                                "name": "TEXT", "detail_code": "TEXT", "detail": "TEXT", "counted_from": "DATE",
                                "rev": "TEXT"},
                  key=("subject", "n"), indexes=(("first_day",),))
#: What each project counts in each year's ranking (`domain.ranking.Standing` rows, numbered per project): the
#: ranking on a day is a sum over the rows that cover it.
STANDINGS = Table("standings", {"code": "TEXT", "n": "INTEGER", "year": "INTEGER", "district": "TEXT",
                                "first_day": "DATE", "last_day": "DATE", "due": "INTEGER", "started": "INTEGER",
                                "planned": "NUMERIC", "completed": "NUMERIC", "cases_open": "INTEGER",
                                "cases_closed_in_time": "INTEGER"},
                  key=("code", "n"), indexes=(("year", "first_day"),))
#: Projects whose facts changed after their stretches were computed (the query evaluates them directly);
#: an approval is marked `approval:<approval_id>`.
UNSETTLED = Table("unsettled", {"code": "TEXT"}, key=("code",))
#: The thresholds the stretches were computed with (one row): others make every project unsettled.
THRESHOLDS = Table("thresholds", {"name": "TEXT", "value": "TEXT"}, key=("name",))
APPROVAL_MARK = "approval:"
#: The events that change a project's row of facts.
_FACT_UPDATES = frozenset({Project.ConstructionStarted, Project.Completed, Project.Cancelled})
#: Projects settled per transaction, so a rebuild's last batch does not become one long transaction.
SETTLE_CHUNK = 2000


#: The project events that change what its alerts are, or what it counts in the ranking.
ALERT_FACTS = frozenset({Project.Admitted, Project.Released, Project.Registered, Project.PlanSet, Project.InvestmentReported, Project.ConstructionStarted,
                         Project.Completed, Project.Cancelled, Project.FactorReclaimed, Project.IssueEscalated,
                         Project.IssueResolved, Project.FundsDisbursed, Project.Amended, Project.SupervisionAssigned,
                         Project.SupervisionResponded, Project.SupervisionClosed, *GRANT_EVENTS})


class Sedimentation(Projection):
    name = "sedimentation"
    # 2: reports keep the day they were made (business time), not just the last value
    # 3: the factor-level rules, supervision cases, amendments and approvals (v1.2)
    # 4: the standings, so the ranking on a day is a sum over an index
    # 5: each stretch keeps its alert as listed, but for the days counted
    version = 5
    tables = (FACTS, GRANTS, PLANS, REPORTS, ISSUES, ESCALATIONS, REDUCTIONS, STAYS, OPEN_STAYS, DISBURSEMENTS,
              AMENDMENTS, CASES, RESPONSES, APPROVALS, DRAWS, STRETCHES, STANDINGS, UNSETTLED, THRESHOLDS)
    handlers = {
        Project.Registered: "registered", Project.PlanSet: "plan_set", Project.InvestmentReported: "reported",
        Project.ConstructionStarted: "started", Project.Completed: "completed", Project.Cancelled: "cancelled",
        Project.FactorReclaimed: "reclaimed", Project.IssueEscalated: "escalated", Project.IssueResolved: "resolved",
        Project.Admitted: "admitted", Project.Released: "released",
        EmissionReduction.Registered: "reduction_registered", EmissionReduction.Completed: "reduction_completed",
        Project.FundsDisbursed: "disbursed", Project.Amended: "amended", Project.SupervisionAssigned: "assigned",
        Project.SupervisionResponded: "responded", Project.SupervisionClosed: "closed",
        LandApproval.Approved: "approved",
        **{cls: "granted" for cls in GRANT_EVENTS},
    }

    def __init__(self, rows: dict[str, Rows | Appended], settings: Settings) -> None:
        super().__init__(rows, settings)
        self.thresholds = settings.thresholds
        self.changed: set[str] = set()  # projects whose facts this batch changed
        self.reductions_changed: set[str] = set()
        self.approvals_changed: set[str] = set()  # approvals approved or drawn on in this batch
        self.marked: bool | None = None  # are projects marked unsettled in the table? (None: not looked yet)

    def apply(self, event: Any) -> None:
        super().apply(event)
        if type(event) in ALERT_FACTS:
            self.changed.add(event.audit.subject)
        elif isinstance(event, EmissionReduction.Completed):
            self.reductions_changed.add(event.audit.subject)

    def prefetch(self, events: Iterable[Any]) -> None:
        stays: set[tuple[str, str]] = set()
        facts: set[tuple[str]] = set()
        cases: set[tuple[str, str]] = set()
        released = []
        for e in events:
            kind = type(e)
            if kind is Project.Admitted or kind is Project.Released:
                stays.add((e.audit.subject, e.library))
                if kind is Project.Released:
                    released.append((e.audit.subject, e.library))
            elif kind in _FACT_UPDATES:
                facts.add((e.audit.subject,))
            elif kind is Project.SupervisionClosed:
                cases.add((e.audit.subject, e.case_id))
        self.rows["open_stays"].prefetch(stays)
        self.rows["facts"].prefetch(facts)
        self.rows["cases"].prefetch(cases)
        self.rows["stays"].prefetch({(code, int(p)) for code, library in released
                                     if (open_stays := self.rows["open_stays"].get(code, library))
                                     for p in open_stays["positions"].split(",")})

    def registered(self, e: Any) -> None:
        self.rows["facts"].put({"code": e.code, "name": e.name, "district": e.district, "department": e.department,
                                "registered_on": e.audit.business_date, "planned_start": e.planned_start,
                                "started_on": None, "completed_on": None, "cancelled_on": None, "stretches": 0,
                                "standings": 0})

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
        factor, quantity = GRANT_EVENTS[type(e)]
        grant_id, amount = e.audit.message_id, getattr(e, quantity) if quantity else None
        self.rows["grants"].put({"grant_id": grant_id, "code": e.audit.subject, "factor": factor,
                                 "granted_on": e.audit.business_date, "reclaimed_on": None,
                                 "reduction_id": getattr(e, "reduction_id", None),
                                 "leader": e.person if is_leader(getattr(e, "role", None)) else None,
                                 "quantity": amount, "source": getattr(e, "source", None),
                                 "start_by": getattr(e, "start_by", None)})
        approval_id = getattr(e, "approval_id", None)
        if approval_id:  # land supplied out of an approval (the same message draws on it)
            self.rows["draws"].put({"approval_id": approval_id, "grant_id": grant_id, "code": e.audit.subject,
                                    "area": amount, "drawn_on": e.audit.business_date})
            self.approvals_changed.add(approval_id)

    def disbursed(self, e: Any) -> None:
        self.rows["disbursements"].put({"code": e.audit.subject, "position": self.position, "grant_id": e.grant_id,
                                        "paid_on": e.date, "amount": e.amount})

    def amended(self, e: Any) -> None:
        if e.planned_start is not None:  # the other changes do not move an alert
            self.rows["amendments"].put({"code": e.audit.subject, "position": self.position,
                                         "amended_on": e.audit.business_date, "planned_start": e.planned_start})

    def assigned(self, e: Any) -> None:
        self.rows["cases"].put({"code": e.audit.subject, "case_id": e.case_id, "rule": e.rule, "grant_id": e.grant_id,
                                "responsible": e.responsible, "assigned_on": e.audit.business_date,
                                "due_date": e.due_date, "closed_on": None, "outcome": None})

    def responded(self, e: Any) -> None:
        self.rows["responses"].put({"code": e.audit.subject, "position": self.position, "case_id": e.case_id,
                                    "responded_on": e.audit.business_date})

    def closed(self, e: Any) -> None:
        self.rows["cases"].update(e.audit.subject, e.case_id, closed_on=e.audit.business_date, outcome=e.outcome)

    def approved(self, e: Any) -> None:
        self.rows["approvals"].put({"approval_id": e.approval_id, "district": e.district, "area": e.area_mu,
                                    "approved_on": e.date, "stretches": 0})
        self.approvals_changed.add(e.approval_id)

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

    # --- the timeline ----------------------------------------------------------------------------

    def settle(self, caught_up: bool) -> bool:
        t = {name: rows.physical for name, rows in self.rows.items()}
        db = self.rows["facts"].db
        changed = self.changed | self._drawing_on(db, t) | {APPROVAL_MARK + a for a in self.approvals_changed}
        self.changed, self.reductions_changed, self.approvals_changed = set(), set(), set()
        if self.marked is None:
            self.marked = bool(db.query(f"SELECT 1 FROM {t['unsettled']} LIMIT 1"))
        if self._thresholds_changed():
            changed |= {code for (code,) in db.query(f"SELECT code FROM {t['facts']}")}
            changed |= {APPROVAL_MARK + a for (a,) in db.query(f"SELECT approval_id FROM {t['approvals']}")}
        if not caught_up:  # a backlog: mark them, settle once caught up
            unsettled = self.rows["unsettled"]
            unsettled.prefetch([(code,) for code in changed])
            for code in changed:
                if unsettled.get(code) is None:  # marked by an earlier batch: once is enough
                    unsettled.put({"code": code})
            self.marked = self.marked or bool(changed)
            return True
        if self.marked:
            changed |= {code for (code,) in db.query(f"SELECT code FROM {t['unsettled']}")}
        ordered = sorted(changed)
        now, later = ordered[:SETTLE_CHUNK], ordered[SETTLE_CHUNK:]
        for code in later:
            self.rows["unsettled"].put({"code": code})
        codes = [code for code in now if not code.startswith(APPROVAL_MARK)]
        approvals = [mark[len(APPROVAL_MARK):] for mark in now if mark.startswith(APPROVAL_MARK)]
        self.rows["facts"].prefetch([(code,) for code in codes])
        for facts in load_facts(db, t, codes=codes):
            self._write_timeline(facts)
        if approvals:
            self.rows["approvals"].prefetch([(a,) for a in approvals])
            for approval in load_approvals(db, t, ids=approvals):
                self._write_approval_timeline(approval)
        if self.marked:
            for code in now:
                self.rows["unsettled"].delete(code)
        self.marked = bool(later)
        return self.marked

    def _drawing_on(self, db: Db, t: dict[str, str]) -> set[str]:
        """The projects that drew on the reductions completed in this batch."""
        if not self.reductions_changed:
            return set()
        scope, params = db.among("reduction_id", sorted(self.reductions_changed))
        return {code for (code,) in db.query(f"SELECT DISTINCT code FROM {t['grants']} WHERE {scope}", params)}

    def _thresholds_changed(self) -> bool:
        mine = fingerprint(self.thresholds)
        stored = self.rows["thresholds"].get("alerts")
        if stored is not None and stored["value"] == mine:
            return False
        self.rows["thresholds"].put({"name": "alerts", "value": mine})
        return stored is not None  # the first time, every project is computed as it is registered

    def _write_timeline(self, facts: ProjectFacts) -> None:
        stretches, standing = timeline(facts, self.thresholds), standings(facts, self.thresholds)
        before = self.rows["facts"].get(facts.code) or {}
        self._write_stretches(facts.code, facts.code, facts.name, facts.district, facts.department, stretches,
                              before.get("stretches") or 0)
        for n, s in enumerate(standing):
            m = s.member
            self.rows["standings"].put({
                "code": facts.code, "n": n, "year": s.year, "district": facts.district, "first_day": s.first,
                "last_day": s.last, "due": int(m.due), "started": int(m.started), "planned": m.planned,
                "completed": m.completed, "cases_open": m.cases_open, "cases_closed_in_time": m.cases_closed_in_time})
        for n in range(len(standing), before.get("standings") or 0):
            self.rows["standings"].delete(facts.code, n)
        self.rows["facts"].update(facts.code, stretches=len(stretches), standings=len(standing))

    def _write_approval_timeline(self, approval: ApprovalFact) -> None:
        stretches = approval_timeline(approval, self.thresholds)
        self._write_stretches(approval.approval_id, None, None, approval.district, APPROVAL_DEPARTMENT, stretches,
                              (self.rows["approvals"].get(approval.approval_id) or {}).get("stretches") or 0)
        self.rows["approvals"].update(approval.approval_id, stretches=len(stretches))

    def _write_stretches(self, subject: str, code: str | None, name: str | None, district: str, department: str,
                         stretches: list[Stretch], before: int) -> None:
        for n, s in enumerate(stretches):
            fixed = DETAILS[s.rule](s.about)
            row = {
                "subject": subject, "n": n, "code": code, "rule": s.rule, "ref": s.ref, "level": s.level,
                "since": s.since, "first_day": s.first, "last_day": s.last, "about": orjson.dumps(s.about).decode(),
                "leader": s.leader, "district": district, "department": department, "grant_id": s.grant_id,
                "factor": s.factor, "reclaimable": int(s.reclaimable), "case_id": s.case_id, "name": name,
                "detail_code": fixed.code,
                "detail": orjson.dumps([fixed.params, said_around(fixed.code, fixed.params, "days")]).decode(),
                "counted_from": counted_from(s.rule, s.about)}
            self.rows["stretches"].put({**row, "rev": rev_of(row)})
        for n in range(len(stretches), before):
            self.rows["stretches"].delete(subject, n)


@lru_cache(maxsize=8)
def fingerprint(thresholds: Thresholds) -> str:
    """The thresholds as the stretches record them, and the edition of the English they keep."""
    return orjson.dumps({**dataclasses.asdict(thresholds), "en": edition("en")}, default=str).decode()


def load_facts(db: Db, t: dict[str, str], district: str | None = None,
               codes: Collection[str] | None = None, annual: int | None = None) -> list[ProjectFacts]:
    """The facts of every project (of one district, of these projects, or of those in the annual
    library of year `annual` at some time, if given), in a handful of queries."""
    if codes is not None:
        scope, params = db.among("code", list(codes))
    elif district is not None:
        scope, params = f"code IN (SELECT code FROM {t['facts']} WHERE district = ?)", [district]
    elif annual is not None:
        scope, params = f"code IN (SELECT code FROM {t['stays']} WHERE library = 'annual' AND year = ?)", [annual]
    else:
        scope, params = "1 = 1", []

    per_project = (FACTS, GRANTS, PLANS, REPORTS, ISSUES, ESCALATIONS, STAYS, DISBURSEMENTS, AMENDMENTS, CASES,
                   RESPONSES)
    found = db.queries([*((f"SELECT {', '.join(table.columns)} FROM {t[table.name]} WHERE {scope} "
                           f"ORDER BY {', '.join(table.key)}", params) for table in per_project),
                        (f"SELECT {', '.join(REDUCTIONS.columns)} FROM {t['reductions']} WHERE reduction_id IN "
                         f"(SELECT reduction_id FROM {t['grants']} WHERE {scope})", params)])

    def rows(table: Table) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for raw in found[per_project.index(table)]:
            row = table.decode(raw)
            grouped[row["code"]].append(row)
        return grouped

    facts = [FACTS.decode(r) for r in found[0]]
    grants, plans, reports, issues = rows(GRANTS), rows(PLANS), rows(REPORTS), rows(ISSUES)
    escalations, stays = rows(ESCALATIONS), rows(STAYS)
    disbursements, amendments, cases, responses = rows(DISBURSEMENTS), rows(AMENDMENTS), rows(CASES), rows(RESPONSES)
    reductions = {r["reduction_id"]: ReductionFact(**r) for r in (REDUCTIONS.decode(raw) for raw in found[-1])}
    result = []
    for f in facts:
        code = f["code"]
        paid: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for d in disbursements[code]:  # in the order recorded
            paid[d["grant_id"]].append((d["paid_on"], d["amount"]))
        answered: dict[str, list[date]] = defaultdict(list)
        for r in responses[code]:
            answered[r["case_id"]].append(r["responded_on"])
        project_grants = tuple(GrantFact(g["grant_id"], g["factor"], g["granted_on"], g["reclaimed_on"],
                                         g["reduction_id"], g["leader"], g["quantity"], tuple(paid[g["grant_id"]]),
                                         g["start_by"]) for g in grants[code])
        used = {g.reduction_id for g in project_grants if g.reduction_id}
        result.append(ProjectFacts(
            **{k: v for k, v in f.items() if k not in ("stretches", "standings")},
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
            start_amendments=tuple((a["amended_on"], a["planned_start"]) for a in amendments[code]),
            cases=tuple(CaseFact(c["case_id"], c["rule"], c["grant_id"], c["responsible"], c["assigned_on"],
                                 c["due_date"], tuple(answered[c["case_id"]]), c["closed_on"], c["outcome"])
                        for c in cases[code]),
        ))
    return result


def load_approvals(db: Db, t: dict[str, str], district: str | None = None,
                   ids: Collection[str] | None = None) -> list[ApprovalFact]:
    """The facts of every land approval (of one district, or these, if given): each with its draws."""
    if ids is not None:
        scope, params = db.among("approval_id", list(ids))
    elif district is not None:
        scope, params = "approval_id IN (SELECT approval_id FROM " + t["approvals"] + " WHERE district = ?)", [district]
    else:
        scope, params = "1 = 1", []
    draws: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    for raw in db.query(f"SELECT {', '.join(DRAWS.columns)} FROM {t['draws']} WHERE {scope} "
                        "ORDER BY drawn_on, grant_id", params):
        row = DRAWS.decode(raw)
        draws[row["approval_id"]].append((row["drawn_on"], row["area"]))
    return [ApprovalFact(a["approval_id"], a["district"], a["area"], a["approved_on"], tuple(draws[a["approval_id"]]))
            for a in (APPROVALS.decode(raw) for raw in db.query(
                f"SELECT {', '.join(APPROVALS.columns)} FROM {t['approvals']} WHERE {scope} ORDER BY approval_id",
                params))]


@dataclass(frozen=True)
class Unsettled:
    """What the index cannot answer for: the projects (`codes`) and approvals (`approvals`) whose facts changed
    after their stretches and standings were computed, or every one of them (`everything`), when these were
    computed with other thresholds. Those are evaluated from their facts; the index answers for the rest."""

    codes: tuple[str, ...] = ()
    approvals: tuple[str, ...] = ()
    everything: bool = False

    def excluded(self, db: Db) -> tuple[list[str], list[Any]]:
        """The conditions that leave them out of the stretches (an approval's stretches have no `code`)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, subjects in (("code", self.codes), ("subject", self.approvals)):
            if subjects:
                scope, among = db.among(column, list(subjects))
                clauses.append(f"NOT ({scope} AND code IS {'NOT ' if column == 'code' else ''}NULL)")
                params += among
        return clauses, params

    def facts(self, db: Db, t: dict[str, str], district: str | None = None) -> list[ProjectFacts]:
        if self.everything:
            return load_facts(db, t, district)
        return load_facts(db, t, codes=self.codes) if self.codes else []

    def approvals_of(self, db: Db, t: dict[str, str], district: str | None = None) -> list[ApprovalFact]:
        if self.everything:
            return load_approvals(db, t, district)
        return load_approvals(db, t, ids=self.approvals) if self.approvals else []

    def alerts(self, db: Db, t: dict[str, str], as_of: date, thresholds: Thresholds, **filters: Any) -> list[Alert]:
        """Their alerts on `as_of`, evaluated from their facts."""
        district = filters.get("district")
        return alerts_of(self.facts(db, t, district), as_of, thresholds, self.approvals_of(db, t, district), **filters)


def unsettled(db: Db, t: dict[str, str], thresholds: Thresholds) -> Unsettled:
    found = db.query(f"SELECT 'thresholds', value FROM {t['thresholds']} WHERE name = 'alerts' "
                     f"UNION ALL SELECT 'mark', code FROM {t['unsettled']}")  # one round trip: every list asks
    if ("thresholds", fingerprint(thresholds)) not in found:
        return Unsettled(everything=True)
    marks = sorted(code for kind, code in found if kind == "mark")
    return Unsettled(tuple(m for m in marks if not m.startswith(APPROVAL_MARK)),
                     tuple(m[len(APPROVAL_MARK):] for m in marks if m.startswith(APPROVAL_MARK)))


#: A stretch (or standing) covering the day of the query's parameters (the day, twice).
COVERING = "first_day <= ? AND (last_day IS NULL OR last_day >= ?)"


def alerts(db: Db, t: dict[str, str], as_of: date, thresholds: Thresholds, **filters: Any) -> list[Alert]:
    """The alerts on `as_of` matching `ALERTS`' filters given (by name; None is not a filter), in the order
    lists show them: the stretches that cover the day, and the projects and approvals not settled yet (or
    all, if the stretches were computed with other thresholds) evaluated from their facts."""
    stale = unsettled(db, t, thresholds)
    found = []
    if not stale.everything:
        for raw in covering(db, t, stale, as_of, filters, tuple(STRETCHES.columns)):
            row = STRETCHES.decode(raw)
            found.append(stretch_of(row).alert(row["code"], row["district"], row["department"], as_of, row["subject"]))
    return ordered(found + stale.alerts(db, t, as_of, thresholds, **filters))


def covering(db: Db, t: dict[str, str], stale: Unsettled, as_of: date, filters: Mapping[str, Any],
             columns: Sequence[str], order: Sequence[str] = (),
             revs: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
    """These columns of the settled stretches covering `as_of` that match `ALERTS`' filters given (in the
    order of the stretch columns `order`, if given; of these `revs` only, if given)."""
    clauses, params = ALERTS.where(filters)  # each filter's column is a column of the stretches
    excluded, others = stale.excluded(db)
    if revs is not None:
        among, listed = db.among("rev", revs)
        excluded, others = [*excluded, among], [*others, *listed]
    return db.query(f"SELECT {', '.join(columns)} FROM {t['stretches']} "
                    f"WHERE {' AND '.join([COVERING, *clauses, *excluded])}"
                    + (f" ORDER BY {db.in_order(order)}" if order else ""), [as_of, as_of, *params, *others])


def alert_counts(db: Db, t: dict[str, str], days: Sequence[date], thresholds: Thresholds) -> list[Counter[tuple[str, str]]]:
    """How many alerts of each level each district has at the end of each of `days` ((district, level) →
    count), summed by the database over the stretches, the unsettled evaluated from their facts."""
    stale = unsettled(db, t, thresholds)
    counts: list[Counter[tuple[str, str]]] = [Counter() for _ in days]
    if days and not stale.everything:
        sums = ", ".join(f"SUM(CASE WHEN {COVERING} THEN 1 ELSE 0 END)" for _ in days)
        excluded, others = stale.excluded(db)
        where = ["first_day <= ?", "(last_day IS NULL OR last_day >= ?)", *excluded]
        for district, level, *values in db.query(
                f"SELECT district, level, {sums} FROM {t['stretches']} WHERE {' AND '.join(where)} "
                "GROUP BY district, level", [*(d for on in days for d in (on, on)), max(days), min(days), *others]):
            for n, value in enumerate(values):
                if value:
                    counts[n][(district, level)] += int(value)
    facts, approvals = stale.facts(db, t), stale.approvals_of(db, t)
    for n, on in enumerate(days):
        counts[n].update((a.district, a.level) for a in alerts_of(facts, on, thresholds, approvals))
    return counts


def idle_quantities(db: Db, t: dict[str, str], as_of: date, thresholds: Thresholds) -> dict[str, Decimal]:
    """Per factor, the quantity of the grants that factor-level alerts on `as_of` name (each grant once), as
    the ledger's 沉淀数量 counts it."""
    stale = unsettled(db, t, thresholds)
    named = sorted({a.grant_id for a in stale.alerts(db, t, as_of, thresholds)
                    if a.rule in FACTOR_RULES and a.grant_id})
    clauses, params = [], []
    if not stale.everything:
        rules, among = db.among("rule", FACTOR_RULES)
        excluded, others = stale.excluded(db)
        clauses.append(f"grant_id IN (SELECT grant_id FROM {t['stretches']} "
                       f"WHERE {' AND '.join([COVERING, rules, *excluded])})")
        params += [as_of, as_of, *among, *others]
    if named:
        scope, among = db.among("grant_id", named)
        clauses.append(scope)
        params += among
    if not clauses:
        return {}
    return {factor: amount(quantity) for factor, quantity in db.query(
        f"SELECT factor, SUM(quantity) FROM {t['grants']} WHERE {' OR '.join(clauses)} GROUP BY factor", params)}


def stretch_of(row: Mapping[str, Any]) -> Stretch:
    return Stretch(row["rule"], row["ref"], row["level"], row["since"], row["first_day"], row["last_day"],
                   tuple(orjson.loads(row["about"])), row["leader"], row["grant_id"], row["factor"],
                   bool(row["reclaimable"]), row["case_id"])


#: The alerts on a day, as `GET /v1/alerts`, its download and the console's 预警 page show them.
ALERTS = Listing(
    "alerts", "要素沉淀预警", "Alerts", rows="alerts", item="AlertItem", response="AlertsResponse",
    columns=(
        dataclasses.replace(project_code("project_code"), nullable=True,
                            description="null for an approval's alert (land_unsupplied)"),
        Column("project_name", "项目名称", "Project", nullable=True, optional=True,
               description="the project's name as registered; null for an approval's alert (land_unsupplied)"),
        DISTRICT,
        Column("rule", "预警类型", "Rule", "code", "rule", choices=RULES),
        Column("level", "预警等级", "Level", "code", "level", choices=LEVELS, look="chip"),
        Column("since", "预警起始日", "Since", "date"),
        Column("detail", "说明", "Detail", "said"),
        Column("ref", "关联事项", "Concerns", nullable=True),
        Column("department", "责任部门", "Responsible department", "code", "department",
               "the project's horizontal owner, who answers for the alert (natural_resources for an approval)"),
        Column("leader", "包抓领导", "Responsible leader",
               description="the project's responsible leader (包抓领导) on that day, if any", nullable=True),
        Column("grant_id", "要素编号", "Grant", nullable=True, optional=True,
               description="the grant a factor-level alert concerns (funds_idle, land_idle, energy_idle)"),
        Column("factor", "要素", "Factor", "code", "factor", choices=reference.FACTORS, nullable=True, optional=True,
               description="the factor of that grant (land for an approval's alert)"),
        Column("reclaimable", "可收回", "Reclaimable", "bool", optional=True,
               description="the factor may be taken back (land idle two years after start_by, energy idle red)"),
        Column("case_id", "督办编号", "Supervision case", nullable=True, optional=True,
               description="the supervision case open on that day about this project, rule and grant"),
        Column("subject", "预警对象", "Subject", optional=True, description="the project code, or an approval's approval_id")),
    filters=(
        day("as_of", None, description="a business date (city time)", zh="截至日期", en="As of", today=True),
        one_of("district", "district", reference.DISTRICTS),
        one_of("department", "department", reference.DEPARTMENTS),
        one_of("rule", "rule", RULES), one_of("level", "level", LEVELS),
        one_of("factor", "factor", reference.FACTORS)),
    order=("district", "project_code", "subject", "rule", "ref"), echo=("as_of",), row_look="level",
    shown=("level", "rule", "project_name", "project_code", "district", "department", "leader", "since", "detail"))


def listed_alerts(tables: Tables, asked: dict[str, Any], thresholds: Thresholds) -> list[dict[str, Any]]:
    """`ALERTS`: the alerts on `as_of` matching the filters given, as the API shows them: those of the settled
    stretches as each keeps it, the day counted in; the others evaluated from their facts (as `alerts`)."""
    db, t, as_of = tables.db, tables.names, asked["as_of"]
    filters = {f.name: asked.get(f.name) for f in ALERTS.filters if f.column}  # the day is not a filter
    stale = unsettled(db, t, thresholds)
    items = [] if stale.everything else kept_alerts(db, t, stale, as_of, filters)
    found = stale.alerts(db, t, as_of, thresholds, **filters)
    if found:
        named = names_in(tables, tables["facts"], {a.project_code for a in found if a.project_code})
        items += [alert_item(a, named.get(a.project_code or "")) for a in found]
        items.sort(key=lambda item: tuple(item[key] or "" for key in ALERTS.order))
    return items


def alert_item(alert: Alert, name: str | None) -> dict[str, Any]:
    """An alert as `ALERTS` lists it (`name`: its project's)."""
    return alert_json(alert.project_code, alert.rule, alert.ref, alert.level, alert.since, alert.detail,
                      district=alert.district, department=alert.department, leader=alert.leader,
                      **factor_fields(alert), project_name=name)


#: The stretch column of an item's key, where the two differ.
STRETCH_OF_ITEM = {"project_code": "code"}
#: The columns of a stretch `kept_alert` reads.
KEPT = ("code", "rule", "ref", "level", "since", "detail_code", "detail", "counted_from", "district", "department",
        "leader", "grant_id", "factor", "reclaimable", "case_id", "subject", "name")


def rev_of(row: Mapping[str, Any]) -> str:
    """A digest of what `kept_alert` reads of a stretch: equal digests, equal items on any day, in any store."""
    return hashlib.blake2b(orjson.dumps([row[c] for c in KEPT]), digest_size=12).hexdigest()


#: Of the days alerts were listed on lately, the items of the latest list by their stretch's `rev`. A write
#: changes few of a day's stretches, and each reader waiting for it asks for the list again: the stretches it
#: lists are read whole, and made items, only when the list before had no item of their `rev`. A list replaces
#: the one before it on its day; the oldest days go first past `LISTED_ITEMS` items (about 2 kB each). A day
#: is kept from its second list among the last `ASKED` (clients going through many days keep nothing).
_LISTED: dict[date, dict[str, dict[str, Any]]] = {}
LISTED_ITEMS = 5000
ASKED = 4
_asked: deque[date] = deque(maxlen=ASKED)
#: Past this many new stretches, the list reads every stretch whole rather than name so many.
REVS_ASKED = 500
_listing = threading.Lock()


def kept_alerts(db: Db, t: dict[str, str], stale: Unsettled, as_of: date,
                filters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The items of the settled stretches covering `as_of` that match the filters, in the order lists show
    them. The items are shared: read, never changed."""
    order = [STRETCH_OF_ITEM.get(key, key) for key in ALERTS.order]
    with _listing:
        before, again = _LISTED.get(as_of), as_of in _asked
        _asked.append(as_of)
    if before is None and not again:
        return [kept_alert(row, as_of) for row in covering(db, t, stale, as_of, filters, KEPT, order)]
    listed: list[tuple[str, Any]] = []
    if before is not None:
        revs = [rev for (rev,) in covering(db, t, stale, as_of, filters, ("rev",), order)]
        new = {rev for rev in revs if rev not in before}
        named = sorted(new) if len(new) <= REVS_ASKED else None  # None: every stretch read, the new ones made
        rows = covering(db, t, stale, as_of, filters, ("rev", *KEPT), revs=named) if new else []
        made = {row[0]: kept_alert(row[1:], as_of) for row in rows if row[0] in new}
        listed = [(rev, before.get(rev) or made.get(rev)) for rev in revs]
    if before is None or any(item is None for _, item in listed):  # nothing to start from (or read outside
        # a snapshot, and changed in between): every stretch read whole
        listed = [(row[0], kept_alert(row[1:], as_of))
                  for row in covering(db, t, stale, as_of, filters, ("rev", *KEPT), order)]
    with _listing:
        _LISTED.pop(as_of, None)
        _LISTED[as_of] = dict(listed)
        while sum(map(len, _LISTED.values())) > LISTED_ITEMS:
            del _LISTED[next(iter(_LISTED))]
    return [item for _, item in listed]


def kept_alert(row: Sequence[Any], as_of: date) -> dict[str, Any]:
    """A stretch's alert on `as_of` as `alert_item` shows it, from the `KEPT` columns: what the index answers
    most often, so it is read straight from the row, with no `Stretch` nor `Alert` made on the way."""
    (code, rule, ref, level, since, detail_code, detail, start, district, department, leader, grant_id,
     factor, reclaimable, case_id, subject, name) = row
    params, words = orjson.loads(detail)
    if start is not None:
        params["days"] = days = (as_of - (date.fromisoformat(start) if start.__class__ is str else start)).days
        english = str(days).join(words) if words is not None else said(detail_code, params)
    else:
        english = words[0] if words is not None else said(detail_code, params)
    return {"project_code": code, "rule": rule, "ref": ref, "level": level,
            "since": date.fromisoformat(since) if since.__class__ is str else since, "detail": english,
            "detail_code": detail_code, "detail_params": params, "district": district, "department": department,
            "leader": leader, "grant_id": grant_id, "factor": factor, "reclaimable": bool(reclaimable),
            "case_id": case_id, "subject": subject, "project_name": name}


def factor_fields(alert: Alert) -> dict[str, Any]:
    """What v1.2 adds to an alert item: the grant and factor, whether reclaimable, the open case, the subject."""
    return {"grant_id": alert.grant_id, "factor": alert.factor, "reclaimable": alert.reclaimable,
            "case_id": alert.case_id, "subject": alert.subject}


#: The district ranking (大干大支持), as `GET /v1/rankings/districts` and its download show it.
RANKING = Listing(
    "district-ranking", "区县排名", "District ranking", rows="districts", item="DistrictRow",
    response="RankingResponse",
    columns=(
        Column("rank", "名次", "Rank", "int", description="1 is best; ties share a rank"),
        DISTRICT,
        Column("score", "得分", "Score", "number",
               description="0-100: 40 × start rate + 40 × progress + 20 × (1 - alert load)"),
        Column("projects", "年度计划项目数", "Annual projects", "int",
               description="projects in the annual library for the year, on the date"),
        Column("due_to_start", "应开工项目数", "Due to start", "int"),
        Column("started", "已开工项目数", "Started", "int"),
        Column("start_rate", "开工率", "Start rate", "rate"),
        Column("planned_investment", "年度计划投资", "Planned investment", "money"),
        Column("completed_investment", "已完成投资", "Completed investment", "money"),
        Column("investment_rate", "投资完成率", "Investment rate", "rate"),
        Column("red_alerts", "红色预警", "Red alerts", "int",
               description="of every rule, the factor-level ones and overdue cases included"),
        Column("yellow_alerts", "黄色预警", "Yellow alerts", "int"),
        Column("cases_open", "在办督办事项", "Cases open", "int", optional=True,
               description="supervision cases of the annual projects open on the date"),
        Column("cases_closed_in_time", "按期销号督办事项", "Cases closed in time", "int", optional=True,
               description="closed by the date, at most YAOSU_CASE_CLOSE_DAYS (30) days after their due date")),
    filters=(Filter("year", int, None, ge=reference.FIRST_YEAR, le=reference.LAST_YEAR, description="the plan's year",
                    zh="计划年度", en="Plan year", required=True),
             day("as_of", None, description="a business date (city time)", zh="截至日期", en="As of", today=True)),
    echo=("year", "as_of"), order=("rank", "district"))


def ranking(tables: Tables, year: int, as_of: date, thresholds: Thresholds) -> list[DistrictScore]:
    """`domain.ranking.rank_districts` of the projects in `year`'s annual library on `as_of`: what each district
    adds up, summed by the database over the standings and alert stretches that cover the day (the projects
    not settled yet, or all if the index was computed with other thresholds, counted from their facts)."""
    return rank_tallies(tallies(tables, year, as_of, thresholds), year, as_of)


def tallies(tables: Tables, year: int, as_of: date, thresholds: Thresholds) -> dict[str, Tally]:
    """Per district, what its members in `year`'s annual library on `as_of` add up (`domain.ranking.Tally`)."""
    db, t = tables.db, tables.names
    stale = unsettled(db, t, thresholds)
    found: dict[str, Tally] = defaultdict(Tally)
    if not stale.everything:
        members, params = f"year = ? AND {COVERING}", [year, as_of, as_of]
        if stale.codes:
            scope, among = db.among("code", list(stale.codes))
            members, params = f"{members} AND NOT ({scope})", [*params, *among]
        for district, *sums in db.query(
                f"SELECT district, COUNT(*), SUM(due), SUM(started), SUM(planned), SUM(completed), SUM(cases_open), "
                f"SUM(cases_closed_in_time) FROM {t['standings']} WHERE {members} GROUP BY district", params):
            projects, due, started, planned, completed, cases_open, closed = sums
            found[district] += Tally(int(projects), int(due), int(started), amount(planned) or Decimal(0),
                                     amount(completed) or Decimal(0), 0, 0, int(cases_open), int(closed))
        for district, level, count in db.query(
                f"SELECT district, level, COUNT(*) FROM {t['stretches']} WHERE {COVERING} "
                f"AND code IN (SELECT code FROM {t['standings']} WHERE {members}) GROUP BY district, level",
                [as_of, as_of, *params]):
            found[district] += Tally(red=int(count)) if level == "red" else Tally(yellow=int(count))
    for facts in stale.facts(db, t):
        if facts.in_library_on("annual", year, as_of):
            found[facts.district] += Tally.of(member_of(facts, year, as_of, thresholds),
                                              [a.level for a in evaluate(facts, as_of, thresholds)])
    return found


def listed_ranking(tables: Tables, asked: Mapping[str, Any], thresholds: Thresholds) -> list[dict[str, Any]]:
    """`RANKING`: the districts on `as_of` for the plan of `year`."""
    return [row.__dict__ for row in ranking(tables, asked["year"], asked["as_of"], thresholds)]


#: The factor-level rule watching each factor an allocation decides (`special_bond`: funds from that source).
IDLE_RULES = {"land": ("land", "land_idle"), "energy": ("energy", "energy_idle"), "special_bond": ("funds", "funds_idle")}


def idle_shares(tables: Tables, factor: str, as_of: date, thresholds: Thresholds,
                found: list[Alert] | None = None) -> dict[str, Decimal]:
    """Per district: the quantity of `factor` granted to its projects (by `as_of`, not reclaimed by then)
    that lies under an active factor-level alert on `as_of`, over all of it so granted (districts with
    none granted: absent). For `special_bond`, the funds allocated from that source. An approval's land
    (批而未供) is granted to no project and counts in neither."""
    granted_factor, rule = IDLE_RULES[factor]
    source = "special_bond" if factor == "special_bond" else None
    found = alerts(tables.db, tables.names, as_of, thresholds) if found is None else found
    idle_grants = {a.grant_id for a in found if a.rule == rule and a.grant_id}
    where = ["g.factor = ?", "g.granted_on <= ?", "(g.reclaimed_on IS NULL OR g.reclaimed_on > ?)",
             "g.quantity IS NOT NULL"]
    params: list[Any] = [granted_factor, as_of, as_of]
    if source is not None:
        where.append("g.source = ?")
        params.append(source)
    granted: dict[str, Decimal] = defaultdict(Decimal)
    idle: dict[str, Decimal] = defaultdict(Decimal)
    for grant_id, district, quantity in tables.db.query(
            f"SELECT g.grant_id, f.district, g.quantity FROM {tables['grants']} g JOIN {tables['facts']} f "
            f"ON f.code = g.code WHERE {' AND '.join(where)}", params):
        amount = quantity if isinstance(quantity, Decimal) else Decimal(str(quantity))
        granted[district] += amount
        if grant_id in idle_grants:
            idle[district] += amount
    return {district: idle[district] / total for district, total in granted.items() if total > 0}


def advice(tables: Tables, year: int, factor: str, total: Decimal, as_of: date,
           thresholds: Thresholds) -> list[Share]:
    """The allocation advice (`GET /v1/allocation/advice`, and the advisor of `allocation.adopted`):
    `total` of `factor` split over `year`'s ranking on `as_of`, each district weighed by score × annual
    planned investment × (1 − its idle share of that factor)."""
    found = alerts(tables.db, tables.names, as_of, thresholds)
    return allocation_advice(ranking(tables, year, as_of, thresholds), total,
                             idle_shares(tables, factor, as_of, thresholds, found))


def alerts_of(facts: list[ProjectFacts], as_of: date, thresholds: Thresholds, approvals: Iterable[ApprovalFact] = (),
              **filters: Any) -> list[Alert]:
    """The alerts of these projects (and approvals) on `as_of` matching `ALERTS`' filters given, in the
    order lists show them."""
    wanted = [(f.column, filters[f.name]) for f in ALERTS.filters if f.column and filters.get(f.name) is not None]
    found = [a for f in facts for a in evaluate(f, as_of, thresholds)]
    found += [a for approval in approvals for a in evaluate_approval(approval, as_of, thresholds)]
    return ordered([a for a in found if all(getattr(a, column) == value for column, value in wanted)])


def ordered(found: list[Alert]) -> list[Alert]:
    """In `ALERTS`' order (an approval's alert, then a project's without an issue or reduction, first)."""
    return sorted(found, key=lambda a: tuple(getattr(a, key) or "" for key in ALERTS.order))


def alert_json(code: str | None, rule: str, ref: str | None, level: str | None, since: date | None,
               detail: Detail | str, **more: Any) -> dict[str, Any]:
    """An alert as `GET /v1/alerts` and the monitor's messages on `yaosu.alerts.v1` show it: its detail
    in English, with its code and params (an older recorded change: its words, and no code)."""
    return {"project_code": code, "rule": rule, "ref": ref, "level": level, "since": since,
            **detail_json(detail), **more}


# --- the month-end counts of the monthly report (h3) --------------------------------------------


def statuses_on(tables: Tables, day: date) -> dict[str, int]:
    """Projects registered by the end of `day` by their status then (未开工, 在建, 已竣工, 已取消), from their
    milestones' business dates: a report for a past month counts as that month ended, not as today."""
    counts = dict.fromkeys(STATUSES, 0)
    for started, completed, cancelled in tables.db.query(
            f"SELECT started_on, completed_on, cancelled_on FROM {tables['facts']} WHERE registered_on <= ?", [day]):
        counts[project_status(*(d if d is not None and date.fromisoformat(str(d)) <= day else None
                                for d in (started, completed, cancelled)))] += 1
    return counts


def libraries_on(tables: Tables, day: date) -> dict[str, int]:
    """Projects in each reserve library at the end of `day` (admitted by then, not released by then)."""
    return {library: n for library, n in tables.db.query(
        f"SELECT library, COUNT(DISTINCT code) FROM {tables['stays']} WHERE admitted_on <= ? "
        "AND (released_on IS NULL OR released_on > ?) GROUP BY library", [day, day])}
