"""The stage board (工作流程): each project's stage, days in it, and the stage's factor checklist."""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from domain import reference
from domain.project import GRANT_EVENTS, Project, coordination_in_place, is_leader, project_status
from projections.listing import DISTRICT, PROJECT_NAME, SECTOR, Column, Listing, Tables, one_of, project_code
from projections.model import SUBJECT, Projection, Table, key_of

#: What the board counts per project: live grants of each factor, issues escalated, leaders assigned.
GRANTED = tuple(dict.fromkeys(factor for factor, _ in GRANT_EVENTS.values()))
COUNTED = (*GRANTED, "issues", "leaders")
BOARD = Table(
    "board",
    {"code": "TEXT", "name": "TEXT", "district": "TEXT", "sector": "TEXT", "stage": "TEXT", "stage_since": "DATE",
     "started_on": "DATE", "completed_on": "DATE", "cancelled_on": "DATE", **{c: "INTEGER" for c in COUNTED}},
    key=("code",),
    indexes=(("stage", "district"),),
)
GRANTS = Table("grants", {"grant_id": "TEXT", "code": "TEXT", "counts": "TEXT"}, key=("grant_id",))


def satisfied(row: dict[str, Any], factor: str) -> bool:
    if factor == "coordination":
        return coordination_in_place(row["issues"], row["leaders"])
    return bool(row[factor])


class Stages(Projection):
    name = "stages"
    version = 1
    tables = (BOARD, GRANTS)
    handlers = {
        Project.Registered: "registered", Project.StageAdvanced: "advanced", Project.FactorReclaimed: "reclaimed",
        Project.IssueEscalated: "escalated", Project.ConstructionStarted: "started", Project.Completed: "completed",
        Project.Cancelled: "cancelled", **{cls: "granted" for cls in GRANT_EVENTS},
    }
    lookups = {"board": SUBJECT, "grants": key_of("grant_id")}

    def registered(self, e: Any) -> None:
        self.rows["board"].put({"code": e.code, "name": e.name, "district": e.district, "sector": e.sector,
                                "stage": "planning", "stage_since": e.audit.business_date, "started_on": None,
                                "completed_on": None, "cancelled_on": None, **{c: 0 for c in COUNTED}})

    def advanced(self, e: Any) -> None:
        self.rows["board"].update(e.audit.subject, stage=e.stage, stage_since=e.audit.business_date)

    def _count(self, code: str, counts: str, step: int) -> None:
        board = self.rows["board"]
        row = board.get(code)
        assert row is not None
        board.put({**row, **{c: row[c] + step for c in counts.split(",")}})

    def granted(self, e: Any) -> None:
        factor, _ = GRANT_EVENTS[type(e)]
        counts = factor + (",leaders" if is_leader(getattr(e, "role", None)) else "")
        self.rows["grants"].put({"grant_id": e.audit.message_id, "code": e.audit.subject, "counts": counts})
        self._count(e.audit.subject, counts, +1)

    def reclaimed(self, e: Any) -> None:
        grant = self.rows["grants"].get(e.grant_id)
        assert grant is not None
        self._count(e.audit.subject, grant["counts"], -1)

    def escalated(self, e: Any) -> None:
        self._count(e.audit.subject, "issues", +1)

    def started(self, e: Any) -> None:
        self.rows["board"].update(e.audit.subject, started_on=e.date)

    def completed(self, e: Any) -> None:
        self.rows["board"].update(e.audit.subject, completed_on=e.date)

    def cancelled(self, e: Any) -> None:
        self.rows["board"].update(e.audit.subject, cancelled_on=e.audit.business_date)


#: The board's projects, one row per project under its stage, as `GET /v1/stages` and its download show them.
LISTING = Listing(
    "stages", "项目阶段", "Stages",  # rows flattened from the board: their model is `BoardProject` and its stage
    rows=lambda body: [{**project, "stage": entry["stage"]} for entry in body["stages"] for project in entry["projects"]],
    columns=(
        Column("stage", "阶段", "Stage", "code", "stage"),
        project_code(),
        PROJECT_NAME,
        DISTRICT,
        SECTOR,
        Column("status", "状态", "Status", "code", "status"),
        Column("stage_since", "进入阶段日期", "In stage since", "date"),
        Column("days_in_stage", "本阶段天数", "Days in stage", "int"),
        Column("satisfied", "已保障要素", "Factors in place", "codes", "factor"),
        Column("missing", "缺少要素", "Factors missing", "codes", "factor")),
    filters=(one_of("stage", "stage", reference.STAGES), one_of("district", "district", reference.DISTRICTS)),
    order=("code",))


def board(tables: Tables, asked: Mapping[str, Any], today: date) -> dict[str, Any]:
    """`LISTING`: the projects of each stage (of those asked for), with their checklists on `today`."""
    clauses, params = LISTING.where(asked)
    rows = [BOARD.decode(r) for r in tables.db.query(
        f"SELECT {', '.join(BOARD.columns)} FROM {tables['board']} WHERE {' AND '.join(['1 = 1', *clauses])} "
        f"ORDER BY {', '.join(LISTING.order)}", params)]
    stage = asked.get("stage")
    stages: dict[str, dict[str, Any]] = {
        s: {"stage": s, "factors": list(reference.STAGE_FACTORS[s]), "projects": []}
        for s in reference.STAGES if not stage or s == stage}
    for row in rows:
        checklist = {f: satisfied(row, f) for f in reference.STAGE_FACTORS[row["stage"]]}
        stages[row["stage"]]["projects"].append({
            "code": row["code"], "name": row["name"], "district": row["district"], "sector": row["sector"],
            "status": project_status(row["started_on"], row["completed_on"], row["cancelled_on"]),
            "stage_since": row["stage_since"],
            "days_in_stage": (today - row["stage_since"]).days,
            "satisfied": [f for f, ok in checklist.items() if ok],
            "missing": [f for f, ok in checklist.items() if not ok],
        })
    for entry in stages.values():
        entry["count"] = len(entry["projects"])
    return {"as_of": today, "stages": list(stages.values())}
