"""Warnings (政策提示): every policy priority a stored message did not follow, for `GET /v1/warnings`."""

from __future__ import annotations

from typing import Any, Mapping

import orjson

from domain import reference
from domain.allocation import Allocation
from domain.policy import WARNING_CODES
from domain.project import Project
from domain.reference import CITY_CODE, district_of, is_project_code
from infra.catalogue import warning_json
from projections.directory import names_in
from projections.listing import DISTRICT, SENDERS, Column, Listing, Order, Paging, Tables, counted, day, one_of, paged
from projections.model import Projection, Table, domain_events

WARNINGS = Table("warnings", {"position": "BIGINT", "n": "INTEGER", "project_code": "TEXT", "message_id": "TEXT",
                              "type": "TEXT", "code": "TEXT", "reason": "TEXT", "detail_code": "TEXT",
                              "detail_params": "TEXT", "occurred_at": "TEXT",
                              "business_date": "DATE", "district": "TEXT", "department": "TEXT"},
                 key=("position", "n"), indexes=(("code",), ("district",), ("department",), ("business_date",)), appends=True)
#: Each project's name, from its registration: a list names the projects of its page (names never change).
NAMES = Table("names", {"code": "TEXT", "name": "TEXT"}, key=("code",))
#: Every event of a project: warnings ride in the audit of whichever events a message caused; and an
#: allocation's (v1.2), whose warnings its pools' events carry too: counted once, with the allocation.
PROJECT_EVENTS = domain_events(Project)


class Warnings(Projection):
    name = "warnings"
    version = 2  # 2: the projects' names (a warning names its project)
    tables = (WARNINGS, NAMES)
    defer_indexes = True
    handlers = {**{cls: "warned" for cls in PROJECT_EVENTS}, Allocation.Adopted: "warned"}

    def warned(self, e: Any) -> None:
        audit = e.audit
        project = audit.subject if is_project_code(audit.subject) else None
        if type(e) is Project.Registered:  # one stored without a name (another version's) is named by none
            self.rows["names"].put({"code": e.code, "name": getattr(e, "name", None)})
        for n, warning in enumerate(audit.warnings):
            shown = warning_json(warning)
            # Not about a project (an allocation): the district it names, else the city's.
            district = district_of(project) if project else (shown["detail_params"] or {}).get("district", CITY_CODE)
            self.rows["warnings"].put({
                "position": self.position, "n": n, "project_code": project, "message_id": audit.message_id,
                "type": audit.message_type, **shown,
                # Parameters are JSON values; an amount a handler left a Decimal is kept as its text.
                "detail_params": orjson.dumps(shown["detail_params"], default=str).decode(),
                "occurred_at": audit.occurred_at.isoformat(), "business_date": audit.business_date,
                "district": district, "department": audit.department})


#: The code of a warning, named (the download shows its code too).
KIND = Column("code", "提示类别", "Warning", "code", "warning", choices=tuple(WARNING_CODES), look="warning")
#: Warnings, as `GET /v1/warnings`, its download, the monthly report and the console's 政策提示 page show them.
LISTING = Listing(
    "warnings", "政策提示", "Warnings", rows="warnings", item="WarningItem", response="WarningsResponse",
    columns=(
        Column("position", "序号", "Position", "int"),
        Column("occurred_at", "业务时间", "Occurred at", "datetime"),
        Column("project_code", "项目代码", "Project code", look="project", nullable=True,
               description="null for a message about no project (an allocation)"),
        Column("project_name", "项目名称", "Project", nullable=True, optional=True,
               description="the project's name as registered; null for a message about no project", name_of_code="project_code"),
        DISTRICT,
        Column("code", "提示代码", "Code", choices=tuple(WARNING_CODES)), KIND,
        Column("reason", "说明", "Reason", "said"),
        Column("type", "消息类型", "Message type", "code", "message"),
        Column("message_id", "消息编号", "Message", look="code"),
        Column("department", "报送部门", "Sent by", "code", "department", "the department that sent the message")),
    filters=(
        one_of("code", "warning", WARNING_CODES),
        one_of("district", "district", reference.DISTRICTS),
        # Any sender: a district portal's messages are warned too.
        one_of("department", "department", SENDERS, description="the department that sent the message"),
        day("from", "business_date", ">=", description="first business date", zh="起始", en="From"),
        day("to", "business_date", "<=", description="last business date", zh="截止", en="To")),
    paging=Paging(page=1000), order=("position", "n"),
    shown=(KIND, "project_name", "project_code", "district", "department", "type", "message_id", "occurred_at", "reason"))


def listed(tables: Tables, asked: Mapping[str, Any], after: int, limit: int,
           order: Order | None = None) -> list[dict[str, Any]]:
    """Warnings matching every filter given (`LISTING`'s), in the order stored, after a position (or, with
    an `order`, the console's page of them sorted by a column)."""
    found = paged(LISTING, tables, WARNINGS, asked, after, limit, order)
    named = names_in(tables, tables["names"], {row["project_code"] for row in found})
    for row in found:
        del row["n"], row["business_date"]
        row["project_name"] = named.get(row["project_code"])
        row["detail_params"] = orjson.loads(row["detail_params"]) if row["detail_params"] else None
    return found


def count(tables: Tables, asked: Mapping[str, Any]) -> int:
    """How many warnings match every filter given."""
    return counted(LISTING, tables, WARNINGS, asked)
