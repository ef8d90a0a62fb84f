"""The audit search (审计查询): one row per domain event, indexed by what an inspection asks.

Who sent it (department, user, token), what (message type, project, district), when it happened
and when it was recorded (and so how late), which message: `GET /v1/audit` and the console's
审计查询 page filter these rows by index, paged by position, never scanning the log.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.alerts import SedimentationAlerts
from domain.checkpoint import AuditCheckpoint
from domain.project import Project
from domain.quota import QuotaPool
from domain.reduction import EmissionReduction
from domain.reference import CITY_CODE, CITY_TZ
from domain.skips import EventSkip
from infra.presenter import dotted_name
from projections.db import Db
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
#: Every domain event, and operators' decisions on the read models: the pipeline's bookkeeping (receipts,
#: parked messages, the clock) is not audited here.
AUDITED = domain_events(Project, QuotaPool, EmissionReduction, SedimentationAlerts, AuditCheckpoint, EventSkip)
#: Filters on a column, by the query parameter's name.
EQUALS = {"department": "department", "actor": "actor", "submitted_by": "submitted_by", "type": "type",
          "project": "subject", "district": "district", "message_id": "message_id"}
#: Ranges: (parameter, column, operator).
RANGES = (("from", "business_date", ">="), ("to", "business_date", "<="), ("recorded_from", "recorded_on", ">="),
          ("recorded_to", "recorded_on", "<="), ("late_days", "late_days", ">="))


class AuditTrail(Projection):
    name = "audit"
    version = 1
    tables = (ENTRIES, ORIGINS)
    defer_indexes = True  # ten indexes, for readers only
    handlers = {cls: "entered" for cls in AUDITED}

    def entered(self, e: Any) -> None:
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


def searched(db: Db, t: dict[str, str], filters: dict[str, Any], after: int, limit: int) -> list[dict[str, Any]]:
    """Entries matching every filter given, in store order, after a position."""
    where, params = ["position > ?"], [after]
    for name, column in EQUALS.items():
        if filters.get(name) is not None:
            where.append(f"{column} = ?")
            params.append(filters[name])
    for name, column, operator in RANGES:
        if filters.get(name) is not None:
            where.append(f"{column} {operator} ?")
            params.append(filters[name])
    rows = db.query(f"SELECT {', '.join(ENTRIES.columns)} FROM {t['entries']} WHERE {' AND '.join(where)} "
                    "ORDER BY position LIMIT ?", [*params, limit])
    return [ENTRIES.decode(r) for r in rows]
