"""Supervision cases (督办: 交办 → 反馈 → 销号), for `GET /v1/supervision` and the console's 督办 pages.

A case lives in its project (`domain.project.Project.cases`); this read model keeps every case of
every project with the project's name and district, and each case's messages in order (the
assignment, each response, the closing), so that the list is one query and a case's page another.

A case's status is read as of a business day (`status_on`): what was assigned, answered and closed
by the end of that day. So the list, like the alerts, can be asked about any past day.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final, Mapping

import orjson

from domain import reference
from domain.project import Project
from domain.supervision import RULES, CaseFact, Thresholds, supervision_overdue_level
from projections.listing import DISTRICT, Column, Filter, Listing, Tables, day, one_of, project_code
from projections.model import SUBJECT, Projection, Table, key_of

PROJECTS = Table("projects", {"code": "TEXT", "name": "TEXT", "district": "TEXT"}, key=("code",))
CASES = Table(
    "cases",
    {"case_id": "TEXT", "project_code": "TEXT", "project_name": "TEXT", "district": "TEXT", "rule": "TEXT",
     "grant_id": "TEXT", "responsible": "TEXT", "assigned_by": "TEXT", "assigned_on": "DATE", "due_date": "DATE",
     "demand": "TEXT", "response_days": "TEXT", "closed_on": "DATE", "outcome": "TEXT", "note": "TEXT",
     "messages": "INTEGER"},
    key=("case_id",), indexes=(("project_code",), ("assigned_on",)))
#: Each case's messages, numbered in the order recorded: `fields` is what the message said (JSON).
MESSAGES = Table("messages", {"case_id": "TEXT", "n": "INTEGER", "kind": "TEXT", "day": "DATE", "occurred_at": "TEXT",
                              "department": "TEXT", "user_name": "TEXT", "message_id": "TEXT", "fields": "TEXT"},
                 key=("case_id", "n"))

#: What a case can be on a day (see `status_on`): `overdue` overlaps `open` and `responded`.
CASE_STATUSES: Final = ("open", "responded", "overdue", "closed")
#: The kinds of a case's messages, in the order a case goes through them.
MESSAGE_KINDS: Final = ("assigned", "responded", "closed")


class Supervision(Projection):
    """The supervision cases (督办) read model."""

    name = "supervision"
    version = 1
    tables = (PROJECTS, CASES, MESSAGES)
    handlers = {Project.Registered: "registered", Project.SupervisionAssigned: "assigned",
                Project.SupervisionResponded: "responded", Project.SupervisionClosed: "closed"}
    lookups = {"projects": SUBJECT, "cases": key_of("case_id")}

    def registered(self, e: Any) -> None:
        self.rows["projects"].put({"code": e.code, "name": e.name, "district": e.district})

    def assigned(self, e: Any) -> None:
        project = self.rows["projects"].get(e.audit.subject)
        assert project is not None, "a case assigned before its project was registered"
        self.rows["cases"].put({
            "case_id": e.case_id, "project_code": project["code"], "project_name": project["name"],
            "district": project["district"], "rule": e.rule, "grant_id": e.grant_id, "responsible": e.responsible,
            "assigned_by": e.audit.department, "assigned_on": e.audit.business_date, "due_date": e.due_date,
            "demand": e.demand, "response_days": "", "closed_on": None, "outcome": None, "note": None, "messages": 0})
        self._message(e, "assigned", rule=e.rule, grant_id=e.grant_id, responsible=e.responsible,
                      due_date=e.due_date, demand=e.demand)

    def responded(self, e: Any) -> None:
        case = self.rows["cases"].get(e.case_id)
        if case is None:  # as the aggregate: a response to no case of the project changes nothing
            return
        days = f"{case['response_days']},{e.audit.business_date}" if case["response_days"] else str(e.audit.business_date)
        self.rows["cases"].put({**case, "response_days": days})
        self._message(e, "responded", measures=e.measures, expected_by=e.expected_by)

    def closed(self, e: Any) -> None:
        case = self.rows["cases"].get(e.case_id)
        if case is None:
            return
        self.rows["cases"].put({**case, "closed_on": e.audit.business_date, "outcome": e.outcome, "note": e.note})
        self._message(e, "closed", outcome=e.outcome, note=e.note)

    def _message(self, e: Any, kind: str, **fields: Any) -> None:
        case = self.rows["cases"].get(e.case_id)
        assert case is not None
        audit = e.audit
        self.rows["messages"].put({
            "case_id": e.case_id, "n": case["messages"], "kind": kind, "day": audit.business_date,
            "occurred_at": audit.occurred_at.isoformat(), "department": audit.department, "user_name": audit.user,
            "message_id": audit.message_id, "fields": orjson.dumps(fields, default=str).decode()})
        self.rows["cases"].put({**case, "messages": case["messages"] + 1})


# --- the status of a case on a day ----------------------------------------------------------------


def status_on(case: Mapping[str, Any], as_of: date, thresholds: Thresholds = Thresholds()) -> set[str]:
    """What a case is at the end of `as_of` (of `CASE_STATUSES`; empty if not assigned yet):

    - `closed`: closed on or before the day;
    - `open`: not closed, and no response by the day;
    - `responded`: not closed, with a response by the day;
    - `overdue` (besides open or responded): the case has the alert `supervision_overdue` that day
      (`domain.supervision.supervision_overdue_level`: past its due date with no response yet, or still
      open more than `case_close_days` after it) — one meaning of 督办逾期 for the list and the alerts.
    """
    if case["assigned_on"] > as_of:
        return set()
    closed_on = case["closed_on"]
    if closed_on is not None and closed_on <= as_of:
        return {"closed"}
    responses = responses_by(case, as_of)
    found = {"responded" if responses else "open"}
    fact = CaseFact(case["case_id"], case["rule"], case["grant_id"], case["responsible"], case["assigned_on"],
                    case["due_date"], tuple(responses))
    if supervision_overdue_level(fact, as_of, thresholds) is not None:
        found.add("overdue")
    return found


def responses_by(case: Mapping[str, Any], as_of: date) -> list[date]:
    """The days of a case's responses made by the end of `as_of`, in order."""
    return [d for d in (date.fromisoformat(t) for t in case["response_days"].split(",") if t) if d <= as_of]


def row_on(case: Mapping[str, Any], as_of: date, thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """A case as `LISTING` shows it at the end of `as_of`."""
    responses = responses_by(case, as_of)
    closed = case["closed_on"] is not None and case["closed_on"] <= as_of
    status = status_on(case, as_of, thresholds)
    end = case["closed_on"] if closed else as_of
    return {
        "case_id": case["case_id"], "project_code": case["project_code"], "project_name": case["project_name"],
        "district": case["district"], "rule": case["rule"], "grant_id": case["grant_id"],
        "responsible": case["responsible"], "assigned_by": case["assigned_by"], "assigned_on": case["assigned_on"],
        "due_date": case["due_date"], "responses": len(responses), "last_response": responses[-1] if responses else None,
        "closed_on": case["closed_on"] if closed else None, "outcome": case["outcome"] if closed else None,
        "days_open": (end - case["assigned_on"]).days, "overdue": "overdue" in status,
        "status": next(s for s in ("closed", "responded", "open") if s in status)}


STATUS = Column("status", "办理状态", "Status", "code", "case_status", choices=("open", "responded", "closed"),
                description="on the as-of day: open (no response yet), responded, or closed", look="chip")
#: The supervision cases, as `GET /v1/supervision`, its download and the console's 督办 page show them.
LISTING = Listing(
    "supervision", "督办事项", "Supervision cases", rows="cases", item="SupervisionCase", response="SupervisionResponse",
    columns=(
        Column("case_id", "督办编号", "Case", look="case"),
        project_code("project_code"),
        Column("project_name", "项目名称", "Project"),
        DISTRICT,
        Column("rule", "预警类型", "Rule", "code", "rule", choices=RULES),
        Column("grant_id", "关联要素供给", "Grant", nullable=True, description="the grant the case is about, if any"),
        Column("responsible", "责任部门", "Responsible department", "code", "department",
               "the department that answers for the case"),
        Column("assigned_by", "交办部门", "Assigned by", "code", "department"),
        Column("assigned_on", "交办日期", "Assigned on", "date"),
        Column("due_date", "反馈期限", "Due date", "date", description="the date a response is due by"),
        Column("responses", "反馈次数", "Responses", "int", description="responses made by the as-of day"),
        Column("last_response", "最近反馈日期", "Last response", "date", nullable=True),
        Column("closed_on", "销号日期", "Closed on", "date", nullable=True),
        Column("outcome", "销号结果", "Outcome", "code", "outcome", choices=reference.CASE_OUTCOMES, nullable=True),
        Column("days_open", "办理天数", "Days open", "int",
               description="days from the assignment to the closing, or to the as-of day while open"),
        STATUS,
        Column("overdue", "督办逾期", "Overdue", "bool",
               description="the case has the alert supervision_overdue on the as-of day: past its due date with no "
                           "response yet, or still open more than YAOSU_CASE_CLOSE_DAYS (30) days after it")),
    filters=(
        Filter("status", str, None, choices=CASE_STATUSES, names="case_status",
               description="on the as-of day: open = not closed and no response; responded = not closed, with a "
                           "response; overdue = with the alert supervision_overdue (past its due date with no response "
                           "yet, or still open more than YAOSU_CASE_CLOSE_DAYS (30) days after it); closed = closed"),
        day("as_of", None, description="a business date (city time): the cases assigned by then, as they stood "
                                       "at its end", zh="截至日期", en="As of", today=True),
        one_of("district", "district", reference.DISTRICTS),
        one_of("department", "department", reference.DEPARTMENTS, column="responsible",
               description="the responsible department", zh="责任部门", en="Responsible department"),
        one_of("rule", "rule", RULES),
        day("from", "assigned_on", ">=", description="first day of assignment", zh="交办起始", en="Assigned from"),
        day("to", "assigned_on", "<=", description="last day of assignment", zh="交办截止", en="Assigned to")),
    order=("assigned_on", "case_id"), echo=("as_of",), row_look="status",
    shown=("case_id", STATUS, "rule", "project_code", "project_name", "district", "responsible", "assigned_on",
           "due_date", "responses", "last_response", "closed_on", "outcome", "days_open", "overdue"))


def _cases(tables: Tables, where: list[str], params: list[Any]) -> list[dict[str, Any]]:
    rows = tables.db.query(f"SELECT {', '.join(CASES.columns)} FROM {tables['cases']} WHERE {' AND '.join(where)} "
                           f"ORDER BY {', '.join(LISTING.order)}", params)
    return [CASES.decode(r) for r in rows]


def listed(tables: Tables, asked: Mapping[str, Any], thresholds: Thresholds) -> list[dict[str, Any]]:
    """`LISTING`: the cases assigned by `as_of` matching the filters given, as they stood at its end."""
    as_of: date = asked["as_of"]
    clauses, params = LISTING.where(asked)
    wanted = asked.get("status")
    found = []
    for case in _cases(tables, ["assigned_on <= ?", *clauses], [as_of, *params]):
        if wanted is None or wanted in status_on(case, as_of, thresholds):
            found.append(row_on(case, as_of, thresholds))
    return found


def case_of(tables: Tables, case_id: str, as_of: date, thresholds: Thresholds) -> dict[str, Any] | None:
    """A case with its demand, its closing note and its messages in order (None: no such case)."""
    found = _cases(tables, ["case_id = ?"], [case_id])
    if not found:
        return None
    case = found[0]
    rows = tables.db.query(f"SELECT {', '.join(MESSAGES.columns)} FROM {tables['messages']} WHERE case_id = ? "
                           "ORDER BY n", [case_id])
    messages = []
    for raw in rows:
        m = MESSAGES.decode(raw)
        messages.append({"kind": m["kind"], "day": m["day"], "occurred_at": m["occurred_at"],
                         "department": m["department"], "user": m["user_name"], "message_id": m["message_id"],
                         **orjson.loads(m["fields"])})
    return {**row_on(case, max(as_of, case["assigned_on"]), thresholds), "as_of": as_of,
            "demand": case["demand"], "note": case["note"], "messages": messages}


def cases_of_project(tables: Tables, code: str) -> list[dict[str, Any]]:
    """A project's cases in the order assigned, as stored (for its page)."""
    return _cases(tables, ["project_code = ?"], [code])
