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
from collections import defaultdict
from datetime import date
from typing import Any, Collection, Iterable, Mapping

import orjson

from domain import reference
from domain.project import GRANT_EVENTS, Project, is_leader
from domain.ranking import DistrictScore, rank_districts
from domain.reduction import EmissionReduction
from domain.supervision import (
    LEVELS,
    RULES,
    Alert,
    GrantFact,
    IssueFact,
    LibraryFact,
    PlanFact,
    ProjectFacts,
    ReductionFact,
    ReportFact,
    Stretch,
    Thresholds,
    evaluate,
    timeline,
)
from domain.texts import Detail
from infra.catalogue import detail_json
from infra.settings import Settings
from projections.db import Db
from projections.listing import DISTRICT, Column, Filter, Listing, Tables, day, one_of, project_code
from projections.model import Appended, Projection, Rows, Table

FACTS = Table("facts", {"code": "TEXT", "name": "TEXT", "district": "TEXT", "department": "TEXT",
                        "registered_on": "DATE", "planned_start": "DATE", "started_on": "DATE", "completed_on": "DATE",
                        "cancelled_on": "DATE", "stretches": "INTEGER"},
              key=("code",), indexes=(("district",),))
GRANTS = Table("grants", {"grant_id": "TEXT", "code": "TEXT", "factor": "TEXT", "granted_on": "DATE",
                          "reclaimed_on": "DATE", "reduction_id": "TEXT", "leader": "TEXT"},
               key=("grant_id",), indexes=(("code",), ("reduction_id",)))
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
#: The alert timeline: `domain.supervision.Stretch` rows, numbered per project (`facts.stretches` of them).
STRETCHES = Table("stretches", {"code": "TEXT", "n": "INTEGER", "rule": "TEXT", "ref": "TEXT", "level": "TEXT",
                                "since": "DATE", "first_day": "DATE", "last_day": "DATE", "about": "TEXT",
                                "leader": "TEXT", "district": "TEXT", "department": "TEXT"},
                  key=("code", "n"), indexes=(("first_day",),))
#: Projects whose facts changed after their stretches were computed (the query evaluates them directly).
UNSETTLED = Table("unsettled", {"code": "TEXT"}, key=("code",))
#: The thresholds the stretches were computed with (one row): others make every project unsettled.
THRESHOLDS = Table("thresholds", {"name": "TEXT", "value": "TEXT"}, key=("name",))
#: The events that change a project's row of facts.
_FACT_UPDATES = frozenset({Project.ConstructionStarted, Project.Completed, Project.Cancelled})
#: Projects settled per transaction, so a rebuild's last batch does not become one long transaction.
SETTLE_CHUNK = 2000


#: The project events that change what its alerts are (library stays only rank districts).
ALERT_FACTS = frozenset({Project.Registered, Project.PlanSet, Project.InvestmentReported, Project.ConstructionStarted,
                         Project.Completed, Project.Cancelled, Project.FactorReclaimed, Project.IssueEscalated,
                         Project.IssueResolved, *GRANT_EVENTS})


class Sedimentation(Projection):
    name = "sedimentation"
    version = 2  # 2: reports keep the day they were made (business time), not just the last value
    tables = (FACTS, GRANTS, PLANS, REPORTS, ISSUES, ESCALATIONS, REDUCTIONS, STAYS, OPEN_STAYS, STRETCHES, UNSETTLED,
              THRESHOLDS)
    handlers = {
        Project.Registered: "registered", Project.PlanSet: "plan_set", Project.InvestmentReported: "reported",
        Project.ConstructionStarted: "started", Project.Completed: "completed", Project.Cancelled: "cancelled",
        Project.FactorReclaimed: "reclaimed", Project.IssueEscalated: "escalated", Project.IssueResolved: "resolved",
        Project.Admitted: "admitted", Project.Released: "released",
        EmissionReduction.Registered: "reduction_registered", EmissionReduction.Completed: "reduction_completed",
        **{cls: "granted" for cls in GRANT_EVENTS},
    }

    def __init__(self, rows: dict[str, Rows | Appended], settings: Settings) -> None:
        super().__init__(rows, settings)
        self.thresholds = settings.thresholds
        self.changed: set[str] = set()  # projects whose facts this batch changed
        self.reductions_changed: set[str] = set()
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
        released = []
        for e in events:
            kind = type(e)
            if kind is Project.Admitted or kind is Project.Released:
                stays.add((e.audit.subject, e.library))
                if kind is Project.Released:
                    released.append((e.audit.subject, e.library))
            elif kind in _FACT_UPDATES:
                facts.add((e.audit.subject,))
        self.rows["open_stays"].prefetch(stays)
        self.rows["facts"].prefetch(facts)
        self.rows["stays"].prefetch({(code, int(p)) for code, library in released
                                     if (open_stays := self.rows["open_stays"].get(code, library))
                                     for p in open_stays["positions"].split(",")})

    def registered(self, e: Any) -> None:
        self.rows["facts"].put({"code": e.code, "name": e.name, "district": e.district, "department": e.department,
                                "registered_on": e.audit.business_date, "planned_start": e.planned_start,
                                "started_on": None, "completed_on": None, "cancelled_on": None, "stretches": 0})

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

    # --- the timeline ----------------------------------------------------------------------------

    def settle(self, caught_up: bool) -> bool:
        t = {name: rows.physical for name, rows in self.rows.items()}
        db = self.rows["facts"].db
        changed = self.changed | self._drawing_on(db, t)
        self.changed, self.reductions_changed = set(), set()
        if self.marked is None:
            self.marked = bool(db.query(f"SELECT 1 FROM {t['unsettled']} LIMIT 1"))
        if self._thresholds_changed():
            changed |= {code for (code,) in db.query(f"SELECT code FROM {t['facts']}")}
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
        self.rows["facts"].prefetch([(code,) for code in now])
        for facts in load_facts(db, t, codes=now):
            self._write_timeline(facts)
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
        stretches = timeline(facts, self.thresholds)
        for n, s in enumerate(stretches):
            self.rows["stretches"].put({
                "code": facts.code, "n": n, "rule": s.rule, "ref": s.ref, "level": s.level, "since": s.since,
                "first_day": s.first, "last_day": s.last, "about": orjson.dumps(s.about).decode(), "leader": s.leader,
                "district": facts.district, "department": facts.department})
        before = self.rows["facts"].get(facts.code)
        for n in range(len(stretches), (before or {}).get("stretches") or 0):
            self.rows["stretches"].delete(facts.code, n)
        self.rows["facts"].update(facts.code, stretches=len(stretches))


def fingerprint(thresholds: Thresholds) -> str:
    """The thresholds as the stretches record them."""
    return orjson.dumps(dataclasses.asdict(thresholds), default=str).decode()


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

    def rows(table: Table) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for raw in db.query(f"SELECT {', '.join(table.columns)} FROM {t[table.name]} WHERE {scope} "
                            f"ORDER BY {', '.join(table.key)}", params):
            row = table.decode(raw)
            grouped[row["code"]].append(row)
        return grouped

    facts = [FACTS.decode(r) for r in db.query(f"SELECT {', '.join(FACTS.columns)} FROM {t['facts']} WHERE {scope} "
                                               "ORDER BY code", params)]
    grants, plans, reports, issues = rows(GRANTS), rows(PLANS), rows(REPORTS), rows(ISSUES)
    escalations, stays = rows(ESCALATIONS), rows(STAYS)
    reductions = {r["reduction_id"]: ReductionFact(**r) for r in (
        REDUCTIONS.decode(raw) for raw in db.query(
            f"SELECT {', '.join(REDUCTIONS.columns)} FROM {t['reductions']} WHERE reduction_id IN "
            f"(SELECT reduction_id FROM {t['grants']} WHERE {scope})", params))}
    result = []
    for f in facts:
        code = f["code"]
        project_grants = tuple(GrantFact(g["grant_id"], g["factor"], g["granted_on"], g["reclaimed_on"],
                                         g["reduction_id"], g["leader"]) for g in grants[code])
        used = {g.reduction_id for g in project_grants if g.reduction_id}
        result.append(ProjectFacts(
            **{k: v for k, v in f.items() if k != "stretches"},
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


def alerts(db: Db, t: dict[str, str], as_of: date, thresholds: Thresholds, **filters: Any) -> list[Alert]:
    """The alerts on `as_of` matching `ALERTS`' filters given (by name; None is not a filter), in the order
    lists show them: the stretches that cover the day, and the projects not settled yet (or all, if the
    stretches were computed with other thresholds) evaluated from their facts."""
    stored = db.query(f"SELECT value FROM {t['thresholds']} WHERE name = 'alerts'")
    if not stored or stored[0][0] != fingerprint(thresholds):
        return alerts_of(load_facts(db, t, filters.get("district")), as_of, thresholds, **filters)
    unsettled = {code for (code,) in db.query(f"SELECT code FROM {t['unsettled']}")}
    clauses, params = ALERTS.where(filters)  # each filter's column is a column of the stretches
    found = []
    for raw in db.query(f"SELECT {', '.join(STRETCHES.columns)} FROM {t['stretches']} "
                        f"WHERE {' AND '.join(['first_day <= ?', '(last_day IS NULL OR last_day >= ?)', *clauses])}",
                        [as_of, as_of, *params]):
        row = STRETCHES.decode(raw)
        if row["code"] not in unsettled:
            stretch = Stretch(row["rule"], row["ref"], row["level"], row["since"], row["first_day"], row["last_day"],
                              tuple(orjson.loads(row["about"])), row["leader"])
            found.append(stretch.alert(row["code"], row["district"], row["department"], as_of))
    if unsettled:
        found += alerts_of(load_facts(db, t, codes=unsettled), as_of, thresholds, **filters)
    return ordered(found)


#: The alerts on a day, as `GET /v1/alerts`, its download and the console's 预警 page show them.
ALERTS = Listing(
    "alerts", "要素沉淀预警", "Alerts", rows="alerts", item="AlertItem", response="AlertsResponse",
    columns=(
        project_code("project_code"),
        DISTRICT,
        Column("rule", "预警类型", "Rule", "code", "rule", choices=RULES),
        Column("level", "预警等级", "Level", "code", "level", choices=LEVELS, look="chip"),
        Column("since", "预警起始日", "Since", "date"),
        Column("detail", "说明", "Detail", "said"),
        Column("ref", "关联事项", "Concerns", nullable=True),
        Column("department", "责任部门", "Responsible department", "code", "department",
               "the project's horizontal owner, who answers for the alert"),
        Column("leader", "包抓领导", "Responsible leader",
               description="the project's responsible leader (包抓领导) on that day, if any", nullable=True)),
    filters=(
        day("as_of", None, description="a business date (city time)", zh="截至日期", en="As of", today=True),
        one_of("district", "district", reference.DISTRICTS),
        one_of("department", "department", reference.DEPARTMENTS),
        one_of("rule", "rule", RULES), one_of("level", "level", LEVELS)),
    order=("district", "project_code", "rule", "ref"), echo=("as_of",), row_look="level",
    shown=("level", "rule", "project_code", "district", "department", "leader", "since", "detail"))


def listed_alerts(tables: Tables, asked: dict[str, Any], thresholds: Thresholds) -> list[dict[str, Any]]:
    """`ALERTS`: the alerts on `as_of` matching the filters given, as the API shows them."""
    found = alerts(tables.db, tables.names, asked["as_of"], thresholds,
                   **{f.name: asked.get(f.name) for f in ALERTS.filters if f.column})  # the day is not a filter
    return [alert_json(a.project_code, a.rule, a.ref, a.level, a.since, a.detail, district=a.district,
                       department=a.department, leader=a.leader) for a in found]


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
        Column("red_alerts", "红色预警", "Red alerts", "int"),
        Column("yellow_alerts", "黄色预警", "Yellow alerts", "int")),
    filters=(Filter("year", int, None, ge=reference.FIRST_YEAR, le=reference.LAST_YEAR, description="the plan's year",
                    zh="计划年度", en="Plan year", required=True),
             day("as_of", None, description="a business date (city time)", zh="截至日期", en="As of", today=True)),
    echo=("year", "as_of"), order=("rank", "district"))


def ranking(tables: Tables, year: int, as_of: date, thresholds: Thresholds,
            found: list[Alert] | None = None) -> list[DistrictScore]:
    """`domain.ranking.rank_districts` of the projects in `year`'s annual library at some time, with
    the alerts of the index (`found`: all of them on `as_of`, if the caller has read them already):
    the facts of the others, and evaluating the rules, are not needed."""
    facts = load_facts(tables.db, tables.names, annual=year)
    found = alerts(tables.db, tables.names, as_of, thresholds) if found is None else found
    return rank_districts(facts, year, as_of, thresholds, alerts=found)


def listed_ranking(tables: Tables, asked: Mapping[str, Any], thresholds: Thresholds) -> list[dict[str, Any]]:
    """`RANKING`: the districts on `as_of` for the plan of `year`."""
    return [row.__dict__ for row in ranking(tables, asked["year"], asked["as_of"], thresholds)]


def alerts_of(facts: list[ProjectFacts], as_of: date, thresholds: Thresholds, **filters: Any) -> list[Alert]:
    """The alerts of these projects on `as_of` matching `ALERTS`' filters given, in the order lists show them."""
    wanted = [(f.column, filters[f.name]) for f in ALERTS.filters if f.column and filters.get(f.name) is not None]
    found = [a for f in facts for a in evaluate(f, as_of, thresholds)]
    return ordered([a for a in found if all(getattr(a, column) == value for column, value in wanted)])


def ordered(found: list[Alert]) -> list[Alert]:
    """In `ALERTS`' order (an alert without an issue or reduction first)."""
    return sorted(found, key=lambda a: tuple(getattr(a, key) or "" for key in ALERTS.order))


def alert_json(project_code: str, rule: str, ref: str | None, level: str | None, since: date | None,
               detail: Detail | str, **more: Any) -> dict[str, Any]:
    """An alert as `GET /v1/alerts` and the monitor's messages on `yaosu.alerts.v1` show it: its detail
    in English, with its code and params (an older recorded change: its words, and no code)."""
    return {"project_code": project_code, "rule": rule, "ref": ref, "level": level, "since": since,
            **detail_json(detail), **more}
