"""The factor ledger (要素台账): per district × year × factor, quota, granted, exempt, reclaimed, remaining."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

import orjson

from domain import reference
from domain.project import GRANT_EVENTS, Project
from domain.quota import QuotaPool
from projections.listing import DISTRICT, Column, Filter, Listing, Tables, one_of, project_code
from projections.model import Projection, Table, amount

PROJECTS = Table("projects", {"code": "TEXT", "district": "TEXT"}, key=("code",))
POOLS = Table("pools", {"pool": "TEXT", "district": "TEXT", "year": "INTEGER", "factor": "TEXT", "quota": "NUMERIC"},
              key=("pool",), indexes=(("district", "year", "factor"),))
GRANTS = Table(
    "grants",
    {"grant_id": "TEXT", "code": "TEXT", "district": "TEXT", "factor": "TEXT", "year": "INTEGER",
     "quantity": "NUMERIC", "exempt": "INTEGER", "department": "TEXT", "granted_on": "DATE",
     "reclaimed_on": "DATE", "reclaim_reason": "TEXT", "detail": "TEXT"},
    key=("grant_id",),
    indexes=(("district", "year", "factor"), ("code",)),
)
_NOT_DETAIL = {"originator_id", "originator_version", "timestamp", "audit", "originator_topic"}


class FactorLedger(Projection):
    """The factor ledger (要素台账) read model."""

    name = "ledger"
    version = 1
    tables = (PROJECTS, POOLS, GRANTS)
    handlers = {Project.Registered: "registered", Project.FactorReclaimed: "reclaimed",
                QuotaPool.Created: "pool_created", QuotaPool.QuotaSet: "quota_set",
                **{cls: "granted" for cls in GRANT_EVENTS}}

    def registered(self, e: Any) -> None:
        self.rows["projects"].put({"code": e.code, "district": e.district})

    def granted(self, e: Any) -> None:
        factor, quantity = GRANT_EVENTS[type(e)]
        project = self.rows["projects"].get(e.audit.subject)
        assert project is not None
        detail = {k: v for k, v in vars(e).items() if k not in _NOT_DETAIL}
        self.rows["grants"].put({
            "grant_id": e.audit.message_id, "code": e.audit.subject, "district": project["district"],
            "factor": factor, "year": getattr(e, "year", e.audit.business_date.year),
            "quantity": getattr(e, quantity) if quantity else None, "exempt": int(bool(getattr(e, "exempt", False))),
            "department": e.audit.department, "granted_on": e.audit.business_date, "reclaimed_on": None,
            "reclaim_reason": None, "detail": orjson.dumps(detail, default=str).decode(),
        })

    def reclaimed(self, e: Any) -> None:
        self.rows["grants"].update(e.grant_id, reclaimed_on=e.audit.business_date, reclaim_reason=e.reason)

    def pool_created(self, e: Any) -> None:
        self.rows["pools"].put({"pool": e.originator_id.hex, "district": e.district, "year": e.year,
                                "factor": e.factor, "quota": e.amount})

    def quota_set(self, e: Any) -> None:
        self.rows["pools"].update(e.originator_id.hex, quota=e.amount)


FACTOR = Column("factor", "要素", "Factor", "code", "factor")
#: A factor's unit, beside its quantities (the cells stay numbers).
UNIT = Column("factor", "单位", "Unit", "unit")
#: The ledger per district × year × factor, as `GET /v1/ledger`, its download and the console's 要素台账 show it.
LISTING = Listing(
    "ledger", "要素台账", "Factor ledger", rows="rows", item="LedgerRow",
    columns=(DISTRICT, Column("year", "年度", "Year", "int"), FACTOR, UNIT,
             Column("quota", "年度指标", "Quota", "quantity", nullable=True),
             Column("grants", "供给笔数", "Grants", "int"), Column("granted", "已供给", "Granted", "quantity"),
             Column("exempt", "豁免", "Exempt", "quantity"), Column("reclaimed", "已收回", "Reclaimed", "quantity"),
             Column("remaining", "剩余指标", "Remaining", "quantity", nullable=True)),
    filters=(Filter("year", int, "year", ge=reference.FIRST_YEAR, le=reference.LAST_YEAR, zh="年度", en="Year"),
             one_of("district", "district", reference.DISTRICTS), one_of("factor", "factor", reference.FACTORS)),
    order=("district", "year", "factor"), shown=("district", FACTOR, UNIT, "quota", "grants", "granted", "exempt",
                                                 "reclaimed", "remaining"))
#: One project's grants (`GET /v1/ledger?project=`).
PROJECT_GRANTS = Listing(
    "grants", "项目要素供给", "Project grants", rows="grants", item="LedgerGrant",
    columns=(Column("grant_id", "供给编号", "Grant"), project_code(),
             DISTRICT, FACTOR, Column("year", "年度", "Year", "int"),
             Column("quantity", "数量", "Quantity", "quantity", nullable=True), UNIT,
             Column("exempt", "豁免", "Exempt", "bool"),
             Column("department", "供给部门", "Granted by", "code", "department"),
             Column("granted_on", "供给日期", "Granted on", "date"),
             Column("reclaimed_on", "收回日期", "Reclaimed on", "date", nullable=True),
             Column("reclaim_reason", "收回原因", "Reclaim reason", nullable=True),
             Column("detail", "明细", "Detail", "json")),
    filters=(Filter("project", str, "code", pattern=reference.PROJECT_CODE_PATTERN),),
    order=("granted_on", "grant_id"))


def summary(tables: Tables, asked: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`LISTING`: the ledger's cells matching the filters given."""
    db, t = tables.db, tables.names
    clauses, params = LISTING.where(asked)
    where = ["1 = 1", *clauses]
    cells: dict[tuple[str, int, str], dict[str, Any]] = {}

    def cell(d: str, y: int, f: str) -> dict[str, Any]:
        return cells.setdefault((d, y, f), {"district": d, "year": y, "factor": f, "quota": None, "grants": 0,
                                            "granted": Decimal(0), "exempt": Decimal(0), "reclaimed": Decimal(0)})

    for d, y, f, quota in db.query(f"SELECT district, year, factor, quota FROM {t['pools']} "
                                   f"WHERE {' AND '.join(where)}", params):
        cell(d, y, f)["quota"] = amount(quota)
    grants = db.query(
        f"SELECT district, year, factor, COUNT(*), "
        f"SUM(CASE WHEN exempt = 0 THEN quantity ELSE 0 END), SUM(CASE WHEN exempt = 1 THEN quantity ELSE 0 END), "
        f"SUM(CASE WHEN exempt = 0 AND reclaimed_on IS NOT NULL THEN quantity ELSE 0 END) "
        f"FROM {t['grants']} WHERE {' AND '.join(where)} GROUP BY district, year, factor", params)
    for d, y, f, n, granted, exempt, reclaimed in grants:
        c = cell(d, y, f)
        c.update(grants=n, granted=amount(granted), exempt=amount(exempt), reclaimed=amount(reclaimed))
    for c in cells.values():
        c["remaining"] = None if c["quota"] is None else c["quota"] - c["granted"] + c["reclaimed"]
    return sorted(cells.values(), key=lambda c: (c["district"], c["year"], c["factor"]))


def project_grants(tables: Tables, code: str) -> list[dict[str, Any]]:
    """`PROJECT_GRANTS`: a project's grants, in the order granted."""
    rows = tables.db.query(f"SELECT {', '.join(GRANTS.columns)} FROM {tables['grants']} WHERE code = ? "
                           f"ORDER BY {', '.join(PROJECT_GRANTS.order)}", [code])
    grants = [GRANTS.decode(r) for r in rows]
    for g in grants:
        g["detail"] = orjson.loads(g["detail"])
        g["exempt"] = bool(g["exempt"])
    return grants
