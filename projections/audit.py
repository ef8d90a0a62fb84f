"""The audit search (审计查询): one row per domain event, indexed by what an inspection asks.

Who sent it (department, user, token), what (message type, project, district), when it happened
and when it was recorded (and so how late), which message: `GET /v1/audit` and the console's
审计查询 page filter these rows by index, paged by position, never scanning the log.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from domain import reference
from domain.alerts import SedimentationAlerts
from domain.allocation import Allocation
from domain.approval import LandApproval
from domain.casebook import CaseNumber
from domain.checkpoint import AuditCheckpoint
from domain.project import Project
from domain.quota import QuotaPool
from domain.reduction import EmissionReduction
from domain.reference import CITY_CODE, CITY_TZ
from domain.skips import EventSkip
from infra.presenter import dotted_name
from projections.directory import names_in
from projections.listing import (
    DISTRICT,
    SENDERS,
    Column,
    Filter,
    Listing,
    Order,
    Paging,
    Tables,
    counted,
    day,
    exactly,
    one_of,
    paged,
)
from projections.model import Projection, Table, domain_events

ENTRIES = Table("entries", {
    "position": "BIGINT", "type": "TEXT", "event": "TEXT", "subject": "TEXT", "district": "TEXT",
    "department": "TEXT", "actor": "TEXT", "submitted_by": "TEXT", "message_id": "TEXT",
    "business_date": "DATE", "recorded_on": "DATE", "recorded_at": "TEXT", "late_days": "INTEGER"},
    key=("position",),
    # Each filter with the position, so a filtered page is an index range in position order.
    indexes=(("department", "position"), ("actor", "position"), ("submitted_by", "position"),
             ("type", "position"), ("subject", "position"), ("district", "position"),
             ("message_id", "position"), ("business_date", "position"), ("recorded_on", "position"),
             ("late_days", "position")),
    appends=True)
#: The district of each aggregate, from its first event (later ones do not repeat it).
ORIGINS = Table("origins", {"originator_id": "TEXT", "district": "TEXT"}, key=("originator_id",))
#: Each project's name, from its registration: a page names the projects its entries are about.
NAMES = Table("names", {"code": "TEXT", "name": "TEXT"}, key=("code",))
#: Every domain event, and operators' decisions on the read models: the pipeline's bookkeeping (receipts,
#: parked messages, the clock) is not audited here.
AUDITED = domain_events(Project, QuotaPool, EmissionReduction, LandApproval, Allocation, CaseNumber,
                        SedimentationAlerts, AuditCheckpoint, EventSkip)
class AuditTrail(Projection):
    name = "audit"
    version = 2  # 2: the projects' names
    tables = (ENTRIES, ORIGINS, NAMES)
    defer_indexes = True  # ten indexes, for readers only
    handlers = {cls: "entered" for cls in AUDITED}
    # The district of a message that names none: its aggregate's, as first seen.
    lookups = {"origins": lambda e: None if getattr(e, "district", None) else (e.originator_id.hex,)}

    def entered(self, e: Any) -> None:
        if type(e) is Project.Registered:  # one stored without a name (another version's) is named by none
            self.rows["names"].put({"code": e.code, "name": getattr(e, "name", None)})
        origin = e.originator_id.hex
        district = getattr(e, "district", None)
        if district:
            self.rows["origins"].put({"originator_id": origin, "district": district})
        else:
            known = self.rows["origins"].get(origin)
            district = known["district"] if known else CITY_CODE
        audit = getattr(e, "audit", None)
        recorded_on = e.timestamp.astimezone(CITY_TZ).date()
        happened: date = audit.business_date if audit else recorded_on
        self.rows["entries"].put({
            "position": self.position,
            "type": audit.message_type if audit else dotted_name(type(e).__qualname__),
            "event": dotted_name(type(e).__qualname__),
            # The project (or the reduction, the district) the message was about.
            "subject": audit.subject if audit else getattr(e, "code", None),
            "district": district,
            "department": audit.department if audit else None,
            "actor": audit.user if audit else None,
            "submitted_by": audit.submitted_by if audit else None,
            "message_id": audit.message_id if audit else None,
            "business_date": happened, "recorded_on": recorded_on, "recorded_at": e.timestamp.isoformat(),
            "late_days": (recorded_on - happened).days})


#: The audit search, as `GET /v1/audit`, its download and the console's 审计查询 page show it.
AUDIT = Listing(
    "audit", "审计查询", "Audit trail", rows="entries", item="AuditEntry", response="AuditResponse",
    columns=(
        Column("position", "序号", "Position", "int"),
        Column("type", "消息类型", "Message type", "code", "message",
               "the message type (or the event's, for events no message caused)"),
        Column("subject", "对象", "Subject", description="the project (or reduction, district) it was about",
               nullable=True, optional=True, look="project"),
        Column("subject_name", "项目名称", "Project", nullable=True, optional=True,
               description="the name of the project it was about, if about a project", name_of_code="subject"),
        DISTRICT,
        Column("department", "报送部门", "Sent by", "code", "department", "the department that sent the message",
               nullable=True, optional=True),
        Column("actor", "经办人", "User", description="the user who did it, as the portal said", nullable=True,
               optional=True),
        Column("submitted_by", "报送方", "Submitted by", description="the token that submitted it", nullable=True,
               optional=True),
        Column("message_id", "消息编号", "Message", nullable=True, optional=True, look="code"),
        Column("business_date", "业务日期", "Happened on", "date", description="when it happened (city time)"),
        Column("recorded_at", "记录时间", "Recorded at", "datetime"),
        Column("late_days", "迟报天数", "Days late", "int", description="days between happening and recording")),
    fields=(Column("event", "事件", "Event"),
            Column("recorded_on", "记录日期", "Recorded on", "date",
                   description="when the store recorded it (city time)")),
    filters=(
        exactly("department", offered=SENDERS, names="department", zh="部门", en="Department"),
        exactly("actor", size=10), exactly("submitted_by", size=10),
        exactly("type", size=16, placeholder="land.supplied"),
        exactly("project", "subject", pattern=reference.PROJECT_CODE_PATTERN, min_length=None, max_length=None,
                size=24, zh="项目代码", en="Project code"),
        one_of("district", "district", reference.DISTRICTS),
        exactly("message_id", size=12),
        day("from", "business_date", ">=", description="first business date", zh="业务日期自", en="Happened from"),
        day("to", "business_date", "<=", description="last business date", zh="业务日期至", en="Happened to"),
        day("recorded_from", "recorded_on", ">=", description="first record date (city time)", zh="记录日期自",
            en="Recorded from"),
        day("recorded_to", "recorded_on", "<=", description="last record date (city time)", zh="记录日期至",
            en="Recorded to"),
        Filter("late_days", int, "late_days", ">=", ge=0, le=36_500,
               description="recorded at least this many days after it happened", zh="迟报至少（天）",
               en="Recorded late by at least (days)")),
    paging=Paging(page=200), order=("position",))


def searched(tables: Tables, asked: dict[str, Any], after: int, limit: int,
             order: Order | None = None) -> list[dict[str, Any]]:
    """Entries matching every filter given (`AUDIT`'s), in store order, after a position (or, with an
    `order`, the console's page of them sorted by a column), each with the name of the project it was about."""
    found = paged(AUDIT, tables, ENTRIES, asked, after, limit, order)
    named = names_in(tables, tables["names"], {row["subject"] for row in found if row["subject"]})
    for row in found:
        row["subject_name"] = named.get(row["subject"] or "")
    return found


def count(tables: Tables, asked: dict[str, Any]) -> int:
    """How many entries match every filter given."""
    return counted(AUDIT, tables, ENTRIES, asked)
