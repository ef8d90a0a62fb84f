"""The factor ledger (要素台账): per district × year × factor, quota, granted, exempt, reclaimed, remaining;
of funds, what was disbursed (资金拨付); of land, what was approved and is not supplied yet (批而未供); and of
every factor, what lies idle under an active factor-level alert (要素沉淀) on the as-of day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Final, Iterable, Mapping

import orjson

from domain import reference
from domain.approval import LandApproval
from domain.project import GRANT_EVENTS, Project
from domain.quota import QuotaPool, quota_drawn
from domain.supervision import Alert, Thresholds
from infra.clock import city_today
from projections import sedimentation
from projections.listing import DISTRICT, Column, Filter, Listing, Tables, day, one_of, project_code
from projections.model import SUBJECT, Projection, Table, amount, key_of

PROJECTS = Table("projects", {"code": "TEXT", "district": "TEXT"}, key=("code",))
POOLS = Table("pools", {"pool": "TEXT", "district": "TEXT", "year": "INTEGER", "factor": "TEXT", "quota": "NUMERIC"},
              key=("pool",), indexes=(("district", "year", "factor"),))
GRANTS = Table(
    "grants",
    {"grant_id": "TEXT", "code": "TEXT", "district": "TEXT", "factor": "TEXT", "year": "INTEGER",
     "quantity": "NUMERIC", "exempt": "INTEGER", "department": "TEXT", "granted_on": "DATE",
     "reclaimed_on": "DATE", "reclaim_reason": "TEXT", "detail": "TEXT", "draws_on": "TEXT"},
    key=("grant_id",),
    indexes=(("district", "year", "factor"), ("code",)),
)
#: Each payment out of a funds grant (资金拨付), on the day paid, in the grant's cell.
DISBURSEMENTS = Table("disbursements", {"position": "BIGINT", "grant_id": "TEXT", "district": "TEXT", "year": "INTEGER",
                                        "factor": "TEXT", "paid_on": "DATE", "amount": "NUMERIC"},
                      key=("position",), appends=True)
#: Land approved (批次用地), by the approval's aggregate id, in the cell of its district and year of approval.
APPROVALS = Table("approvals", {"approval": "TEXT", "approval_id": "TEXT", "district": "TEXT", "year": "INTEGER",
                                "factor": "TEXT", "area": "NUMERIC", "approved_on": "DATE"}, key=("approval",))
#: Each supply of land drawing on an approval, in the approval's cell, on the business day of the supply.
DRAWS = Table("draws", {"position": "BIGINT", "approval": "TEXT", "grant_id": "TEXT", "district": "TEXT",
                        "year": "INTEGER", "factor": "TEXT", "area": "NUMERIC", "drawn_on": "DATE"},
              key=("position",), appends=True)
#: The rules whose alerts name a grant lying idle (factor-level sedimentation, contract v1.2).
IDLE_RULES: Final = frozenset({"funds_idle", "land_idle", "energy_idle"})
_NOT_DETAIL = {"originator_id", "originator_version", "timestamp", "audit", "originator_topic"}


class FactorLedger(Projection):
    """The factor ledger (要素台账) read model."""

    name = "ledger"
    version = 1
    tables = (PROJECTS, POOLS, GRANTS, DISBURSEMENTS, APPROVALS, DRAWS)
    handlers = {Project.Registered: "registered", Project.FactorReclaimed: "reclaimed",
                Project.FundsDisbursed: "disbursed",
                QuotaPool.Created: "pool_created", QuotaPool.QuotaSet: "quota_set",
                LandApproval.Approved: "approved", LandApproval.Drawn: "drawn",
                **{cls: "granted" for cls in GRANT_EVENTS}}
    lookups = {"projects": SUBJECT, "grants": key_of("grant_id"),
               "approvals": lambda e: (e.originator_id.hex,) if type(e) is LandApproval.Drawn else None,
               "pools": lambda e: (e.originator_id.hex,) if type(e) is QuotaPool.QuotaSet else None}

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
            # The quota it draws on where that is not its own factor's: special-bond funds (v1.2).
            "draws_on": drawn if (drawn := quota_drawn(factor, detail)) != factor else None,
        })

    def reclaimed(self, e: Any) -> None:
        self.rows["grants"].update(e.grant_id, reclaimed_on=e.audit.business_date, reclaim_reason=e.reason)

    def disbursed(self, e: Any) -> None:
        grant = self.rows["grants"].get(e.grant_id)
        assert grant is not None, "funds disbursed out of no grant"
        self.rows["disbursements"].put({"position": self.position, "grant_id": e.grant_id, "district": grant["district"],
                                        "year": grant["year"], "factor": grant["factor"], "paid_on": e.date,
                                        "amount": e.amount})

    def approved(self, e: Any) -> None:
        self.rows["approvals"].put({"approval": e.originator_id.hex, "approval_id": e.approval_id,
                                    "district": e.district, "year": e.date.year, "factor": "land",
                                    "area": e.area_mu, "approved_on": e.date})

    def drawn(self, e: Any) -> None:
        approval = self.rows["approvals"].get(e.originator_id.hex)
        assert approval is not None, "land drawn on no approval"
        self.rows["draws"].put({"position": self.position, "approval": approval["approval"], "grant_id": e.grant_id,
                                "district": approval["district"], "year": approval["year"], "factor": "land",
                                "area": e.area_mu, "drawn_on": e.audit.business_date})

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
             Column("remaining", "剩余指标", "Remaining", "quantity", nullable=True),
             Column("disbursed", "已拨付", "Disbursed", "quantity", nullable=True, optional=True,
                    description="funds: paid out of the grants by the as-of day (资金拨付); null for other factors"),
             Column("idle", "沉淀数量", "Idle", "quantity", nullable=True, optional=True,
                    description="the quantity of the grants under an active factor-level alert (funds_idle, "
                                "land_idle, energy_idle) on the as-of day"),
             Column("approved", "已批复", "Approved", "quantity", nullable=True, optional=True,
                    description="land: approved (批次用地) by the as-of day, by the district and year of approval; "
                                "null for other factors"),
             Column("unsupplied", "批而未供", "Unsupplied", "quantity", nullable=True, optional=True,
                    description="land: of that approved, not supplied by the as-of day (批而未供)")),
    filters=(Filter("year", int, "year", ge=reference.FIRST_YEAR, le=reference.LAST_YEAR, zh="年度", en="Year"),
             one_of("district", "district", reference.DISTRICTS), one_of("factor", "factor", (*reference.FACTORS, "special_bond")),
             day("as_of", None, description="a business date (city time): granted, reclaimed, disbursed, approved and "
                                            "unsupplied by its end, idle under the alerts of that day", zh="截至日期",
                 en="As of", today=True)),
    order=("district", "year", "factor"), shown=("district", FACTOR, UNIT, "quota", "grants", "granted", "exempt",
                                                 "reclaimed", "remaining", "disbursed", "idle", "approved",
                                                 "unsupplied"))
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


Cell = tuple[str, int, str]


def ledger_on(tables: Tables, alerting: Tables, asked: Mapping[str, Any], thresholds: Thresholds) -> list[dict[str, Any]]:
    """`LISTING` as of `as_of` (default today), what lies idle read from the alert index (`alerting`) of that day:
    as `GET /v1/ledger`, the monthly report and the console's 要素台账 show it."""
    as_of: date = asked.get("as_of") or city_today()
    found = sedimentation.alerts(alerting.db, alerting.names, as_of, thresholds)
    return summary(tables, {**asked, "as_of": as_of}, found)


def summary(tables: Tables, asked: Mapping[str, Any], alerts: Iterable[Alert] | None = None) -> list[dict[str, Any]]:
    """`LISTING`: the ledger's cells matching the filters given, as of `as_of` (default today): `idle` from
    the alerts of that day when given (else null: not asked)."""
    db, t = tables.db, tables.names
    as_of: date = asked.get("as_of") or city_today()
    clauses, params = LISTING.where(asked)
    where = ["1 = 1", *clauses]
    cells: dict[Cell, dict[str, Any]] = {}

    def cell(d: str, y: int, f: str) -> dict[str, Any]:
        return cells.setdefault((d, y, f), {
            "district": d, "year": y, "factor": f, "quota": None, "grants": 0, "granted": Decimal(0),
            "exempt": Decimal(0), "reclaimed": Decimal(0), "disbursed": Decimal(0) if f == "funds" else None,
            "idle": None if alerts is None else Decimal(0), "approved": None, "unsupplied": None})

    for d, y, f, quota in db.query(f"SELECT district, year, factor, quota FROM {t['pools']} "
                                   f"WHERE {' AND '.join(where)}", params):
        cell(d, y, f)["quota"] = amount(quota)
    # Each grant in its factor's cell, and in the cell of the quota it draws on if that is another's
    # (special-bond funds under special_bond: what its quota has left).
    # Granted by the end of `as_of`, reclaimed by then (issue 22: a report for a past month is as it ended).
    grants = db.query(
        f"SELECT district, year, factor, COUNT(*), "
        f"SUM(CASE WHEN exempt = 0 THEN quantity ELSE 0 END), SUM(CASE WHEN exempt = 1 THEN quantity ELSE 0 END), "
        f"SUM(CASE WHEN exempt = 0 AND reclaimed_on IS NOT NULL AND reclaimed_on <= ? THEN quantity ELSE 0 END) "
        f"FROM (SELECT district, year, factor, quantity, exempt, reclaimed_on, granted_on FROM {t['grants']} UNION ALL "
        f"SELECT district, year, draws_on, quantity, exempt, reclaimed_on, granted_on FROM {t['grants']} "
        f"WHERE draws_on IS NOT NULL) AS drawn WHERE {' AND '.join([*where, 'granted_on <= ?'])} "
        "GROUP BY district, year, factor", [as_of, *params, as_of])
    for d, y, f, n, granted, exempt, reclaimed in grants:
        c = cell(d, y, f)
        c.update(grants=n, granted=amount(granted), exempt=amount(exempt), reclaimed=amount(reclaimed))
    for d, y, f, paid in db.query(f"SELECT district, year, factor, SUM(amount) FROM {t['disbursements']} "
                                  f"WHERE {' AND '.join([*where, 'paid_on <= ?'])} GROUP BY district, year, factor",
                                  [*params, as_of]):
        cell(d, y, f)["disbursed"] = amount(paid)
    for d, y, f, area in db.query(f"SELECT district, year, factor, SUM(area) FROM {t['approvals']} "
                                  f"WHERE {' AND '.join([*where, 'approved_on <= ?'])} GROUP BY district, year, factor",
                                  [*params, as_of]):
        cell(d, y, f).update(approved=amount(area), unsupplied=amount(area))
    drawn = db.query(f"SELECT district, year, factor, SUM(area) FROM {t['draws']} WHERE {' AND '.join([*where, 'drawn_on <= ?'])} "
                     f"AND approval IN (SELECT approval FROM {t['approvals']} WHERE approved_on <= ?) "
                     "GROUP BY district, year, factor", [*params, as_of, as_of])
    for d, y, f, area in drawn:
        c = cell(d, y, f)
        c["unsupplied"] = (c["unsupplied"] or Decimal(0)) - amount(area)
    if alerts is not None:
        named = idle_grant_ids(alerts)
        if named:
            scope, among = db.among("grant_id", sorted(named))
            found = db.query(f"SELECT grant_id, district, year, factor, quantity FROM {t['grants']} "
                             f"WHERE {' AND '.join([*where, scope])}", [*params, *among])
            for key, idle in idle_cells(alerts, {g: (d, y, f, q) for g, d, y, f, q in found}).items():
                cell(*key)["idle"] = idle
    for c in cells.values():
        c["remaining"] = None if c["quota"] is None else c["quota"] - c["granted"] + c["reclaimed"]
    return sorted(cells.values(), key=lambda c: (c["district"], c["year"], c["factor"]))


def idle_grant_ids(alerts: Iterable[Alert]) -> set[str]:
    """The grants factor-level alerts name (a grant alerted by two rules is one grant)."""
    return {a.grant_id for a in alerts if a.rule in IDLE_RULES and a.grant_id is not None}


def idle_cells(alerts: Iterable[Alert], grants: Mapping[str, tuple[str, int, str, Any]]) -> dict[Cell, Decimal]:
    """The quantity lying idle per ledger cell: the sum of the quantities of the grants the alerts name,
    each once (`grants`: grant id → its district, year, factor and quantity; a grant not in it is not
    in the cells asked for)."""
    idle: dict[Cell, Decimal] = {}
    for grant_id in idle_grant_ids(alerts):
        if grant_id in grants:
            district, year, factor, quantity = grants[grant_id]
            key = (district, year, factor)
            idle[key] = idle.get(key, Decimal(0)) + amount(quantity)
    return idle


def project_grants(tables: Tables, code: str) -> list[dict[str, Any]]:
    """`PROJECT_GRANTS`: a project's grants, in the order granted."""
    rows = tables.db.query(f"SELECT {', '.join(GRANTS.columns)} FROM {tables['grants']} WHERE code = ? "
                           f"ORDER BY {', '.join(PROJECT_GRANTS.order)}", [code])
    grants = [GRANTS.decode(r) for r in rows]
    for g in grants:
        g["detail"] = orjson.loads(g["detail"])
        g["exempt"] = bool(g["exempt"])
    return grants
