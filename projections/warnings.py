"""Warnings (政策提示): every policy priority a stored message did not follow, for `GET /v1/warnings`."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson

from domain.project import Project
from domain.reference import district_of
from infra.catalogue import warning_json
from projections.db import Db
from projections.model import Projection, Table, domain_events

WARNINGS = Table("warnings", {"position": "BIGINT", "n": "INTEGER", "project_code": "TEXT", "message_id": "TEXT",
                              "type": "TEXT", "code": "TEXT", "reason": "TEXT", "detail_code": "TEXT",
                              "detail_params": "TEXT", "occurred_at": "TEXT",
                              "business_date": "DATE", "district": "TEXT", "department": "TEXT"},
                 key=("position", "n"), indexes=(("code",), ("district",), ("department",), ("business_date",)), appends=True)
#: Every event of a project: warnings ride in the audit of whichever events a message caused.
PROJECT_EVENTS = domain_events(Project)


class Warnings(Projection):
    name = "warnings"
    version = 1
    tables = (WARNINGS,)
    defer_indexes = True
    handlers = {cls: "warned" for cls in PROJECT_EVENTS}

    def warned(self, e: Any) -> None:
        audit = e.audit
        for n, warning in enumerate(audit.warnings):
            shown = warning_json(warning)
            self.rows["warnings"].put({
                "position": self.position, "n": n, "project_code": audit.subject, "message_id": audit.message_id,
                "type": audit.message_type, **shown, "detail_params": orjson.dumps(shown["detail_params"]).decode(),
                "occurred_at": audit.occurred_at.isoformat(), "business_date": audit.business_date,
                "district": district_of(audit.subject), "department": audit.department})


def listed(db: Db, t: dict[str, str], filters: dict[str, Any], after: int, limit: int) -> list[dict[str, Any]]:
    where, params = ["position > ?"], [after]
    for column in ("code", "district", "department"):
        if filters.get(column) is not None:
            where.append(f"{column} = ?")
            params.append(filters[column])
    for column, operator in (("from", ">="), ("to", "<=")):
        day: date | None = filters.get(column)
        if day is not None:
            where.append(f"business_date {operator} ?")
            params.append(day)
    rows = db.query(f"SELECT {', '.join(WARNINGS.columns)} FROM {t['warnings']} WHERE {' AND '.join(where)} "
                    "ORDER BY position, n LIMIT ?", [*params, limit])
    found = [WARNINGS.decode(r) for r in rows]
    for row in found:
        del row["n"], row["business_date"]
        row["detail_params"] = orjson.loads(row["detail_params"]) if row["detail_params"] else None
    return found
