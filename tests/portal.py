"""Builders of contract envelopes for tests."""

from __future__ import annotations

import itertools
from typing import Any

CODE = "2021-620102-48-01-000123"
OTHER = "2021-620103-44-02-000456"
REGISTRATION = {
    "name": "城关区智能制造基地", "district": "620102", "sector": "C", "department": "industry_it",
    "owner": "兰州产投集团", "total_investment": 12000, "planned_start": "2021-04-01",
    "planned_completion": "2023-06-30", "revenue_generating": True,
}
_ids = itertools.count(1)


def msg(type_: str, payload: dict[str, Any], *, code: str | None = CODE, dept: str = "development_reform",
        at: str = "2021-03-01T09:00:00+08:00", mid: str | None = None) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "message_id": mid or f"test-{next(_ids):07d}",
        "type": type_,
        "occurred_at": at,
        "source": "test-portal",
        "actor": {"department": dept, "user": "zhang.san"},
        "payload": payload,
    }
    if code is not None:
        envelope["project_code"] = code
    return envelope


def register(code: str = CODE, **overrides: Any) -> dict[str, Any]:
    return msg("project.registered", {**REGISTRATION, **overrides}, code=code, at="2021-01-10T09:00:00+08:00")


def admitted(code: str = CODE, *libraries: str, **overrides: Any) -> list[dict[str, Any]]:
    """A registered project admitted to the municipal library and the given others."""
    return [register(code, **overrides)] + [
        msg("project.admitted", {"library": library, **({"year": 2021} if library == "annual" else {})},
            code=code, at="2021-01-12T09:00:00+08:00")
        for library in ("municipal", *libraries)
    ]


def energy_quota(amount: float, district: str = "620102", year: int = 2021) -> dict[str, Any]:
    return msg("quota.set", {"district": district, "year": year, "factor": "energy", "amount": amount}, code=None)


def land_quota(amount: float, district: str = "620102", year: int = 2021) -> dict[str, Any]:
    return msg("quota.set", {"district": district, "year": year, "factor": "land", "amount": amount},
               code=None, dept="natural_resources")


def reduction(reduction_id: str = "RD-1", tonnes: float = 100, pollutant: str = "SO2") -> dict[str, Any]:
    return msg("emission.reduction_registered", {
        "reduction_id": reduction_id, "enterprise": "兰州某化工厂", "pollutant": pollutant, "tonnes": tonnes,
        "due_date": "2021-12-31"}, code=None, dept="ecology_environment")


#: One accepted example per factor message, with its sender.
FACTOR_MESSAGES: dict[str, tuple[str, dict[str, Any]]] = {
    "funds.allocated": ("finance", {"source": "own_funds", "amount": 500, "document": "兰财〔2021〕1号"}),
    "land.supplied": ("natural_resources", {"parcel": "LZ-2021-017", "area_mu": 86.5, "method": "transfer"}),
    "energy.granted": ("development_reform", {"tce": 1000, "year": 2021}),
    "emission.advanced": ("ecology_environment", {"reduction_id": "RD-1", "pollutant": "SO2", "tonnes": 10}),
    "data.provided": ("big_data", {"kind": "planning_data", "reference": "D-1"}),
    "utility.connected": ("power_supply", {"utility": "power", "reference": "P-1"}),
    "talent.assigned": ("organisation", {"person": "李四", "role": "responsible_leader"}),
    "issue.escalated": ("transport", {"issue_id": "I-1", "title": "征地协调", "level": "city",
                                      "assigned_to": "natural_resources", "due_date": "2021-04-30"}),
}


# --- one accepted example of every message type, after a common setup -----------------------

OWNER = "industry_it"  # the horizontal owner of CODE (REGISTRATION)
DISTRICT = "district:620102"  # CODE's district portal
NEW_CODE = "2021-620102-44-02-000456"
AT = "2021-03-02T10:00:00+08:00"

SETUP = [
    *admitted(CODE, "annual"), energy_quota(5000), land_quota(5000), reduction("RD-1", 100),
    msg("land.supplied", {"parcel": "P-1", "area_mu": 10, "method": "transfer"}, dept="natural_resources",
        mid="grant-land-1"),
    msg("issue.escalated", {"issue_id": "I-1", "title": "征地", "level": "city", "assigned_to": "natural_resources",
                            "due_date": "2021-04-30"}),
]
#: Under construction (v1.2: a project completes from the construction stage only).
STARTED = [*(msg("stage.advanced", {"stage": stage}, at=AT) for stage in ("generation", "approval", "construction")),
           msg("construction.started", {"date": "2021-03-01"}, at=AT)]

#: Per message type: a payload that the right sender gets accepted after SETUP (and what else it needs first).
EXAMPLES: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "project.registered": ({"name": "新项目", "district": "620102", "sector": "C", "department": OWNER, "owner": "某公司",
                            "total_investment": 100, "planned_start": "2021-05-01",
                            "planned_completion": "2022-05-01", "revenue_generating": False}, []),
    "plan.set": ({"year": 2021, "planned_investment": 100}, []),
    "project.admitted": ({"library": "rolling3y"}, []),
    "project.released": ({"library": "annual", "reason": "调出"}, []),
    "stage.advanced": ({"stage": "generation"}, []),
    "funds.allocated": ({"source": "own_funds", "amount": 10}, []),
    "bond.evaluated": ({"kind": "legal", "evaluator": "律所", "passed": True}, []),
    "land.supplied": ({"parcel": "P-2", "area_mu": 5, "method": "allocation"}, []),
    "energy.granted": ({"tce": 10, "year": 2021}, []),
    "emission.reduction_registered": ({"reduction_id": "RD-2", "enterprise": "某厂", "pollutant": "SO2",
                                       "tonnes": 5, "due_date": "2021-12-31"}, []),
    "emission.advanced": ({"reduction_id": "RD-1", "pollutant": "SO2", "tonnes": 1}, []),
    "emission.reduction_completed": ({"reduction_id": "RD-1"}, []),
    "data.provided": ({"kind": "k", "reference": "r"}, []),
    "utility.connected": ({"utility": "water"}, []),
    "talent.assigned": ({"person": "王五", "role": "expert"}, []),
    "issue.escalated": ({"issue_id": "I-2", "title": "用能", "level": "district", "assigned_to": "water",
                         "due_date": "2021-05-30"}, []),
    "issue.resolved": ({"issue_id": "I-1", "resolution": "已解决"}, []),
    "construction.started": ({"date": "2021-03-01"}, []),
    "investment.reported": ({"period": "2021-02", "completed": 10}, []),
    "project.completed": ({"date": "2021-03-02"}, STARTED),
    "investment.pitched": ({"event": "第27届兰洽会", "date": "2021-03-02", "counterpart": "某央企"},
                           [msg("project.admitted", {"library": "investment_attraction"}, at=AT)]),
    "project.cancelled": ({"reason": "撤销"}, []),
    "factor.reclaimed": ({"factor": "land", "grant_id": "grant-land-1", "reason": "闲置"}, []),
    "exception.approved": ({"rule": "not_in_annual_plan", "reference": "EX-9", "reason": "民生"}, []),
    "quota.set": ({"district": "620102", "year": 2022, "factor": "energy", "amount": 10}, []),
    # v1.2
    "funds.disbursed": ({"grant_id": "grant-funds-1", "amount": 5, "date": "2021-03-02"},
                        [msg("funds.allocated", {"source": "own_funds", "amount": 10}, dept="finance", at=AT,
                             mid="grant-funds-1")]),
    "land.approved": ({"approval_id": "LA-1", "district": "620102", "area_mu": 100, "date": "2021-03-01"}, []),
    "project.amended": ({"planned_completion": "2023-12-31", "reason": "建设内容调整"}, []),
    "supervision.assigned": ({"case_id": "DB-1", "rule": "issue_overdue", "responsible": "natural_resources",
                              "due_date": "2021-03-31", "demand": "限期办结征地协调事项"}, []),
    "supervision.responded": ({"case_id": "DB-1", "measures": "已召开协调会", "expected_by": "2021-03-20"}, []),
    "supervision.closed": ({"case_id": "DB-1", "outcome": "waived", "note": "经研究免于追究"}, []),
    "allocation.adopted": ({"allocation_id": "AL-1", "year": 2022, "factor": "land", "total": 100,
                            "shares": [{"district": "620102", "amount": 60}, {"district": "620103", "amount": 40}],
                            "basis": "按2021年度排名"}, []),
}
#: An issue overdue on AT (due a month before), for which a supervision case may be assigned (v1.2).
OVERDUE_ISSUE = msg("issue.escalated", {"issue_id": "I-9", "title": "拆迁", "level": "city",
                                        "assigned_to": "natural_resources", "due_date": "2021-02-01"},
                    at="2021-01-20T09:00:00+08:00")
CASE_ASSIGNED = msg("supervision.assigned", EXAMPLES["supervision.assigned"][0], at=AT, mid="case-DB-1")
EXAMPLES["supervision.assigned"][1].append(OVERDUE_ISSUE)
EXAMPLES["supervision.responded"][1].extend([OVERDUE_ISSUE, CASE_ASSIGNED])
EXAMPLES["supervision.closed"][1].extend([OVERDUE_ISSUE, CASE_ASSIGNED])
#: Who sends each example (one of the contract's senders for it).
EXAMPLE_SENDERS: dict[str, str] = {
    **{t: "development_reform" for t in EXAMPLES},
    "bond.evaluated": "finance", "land.supplied": "natural_resources", "emission.reduction_registered":
    "ecology_environment", "emission.advanced": "ecology_environment", "emission.reduction_completed":
    "ecology_environment", "data.provided": "big_data", "utility.connected": "water", "talent.assigned":
    "organisation", "factor.reclaimed": "natural_resources", "investment.pitched": "cooperation_exchange",
    "funds.disbursed": "finance", "land.approved": "natural_resources", "supervision.responded": "natural_resources",
    "allocation.adopted": "natural_resources",
}
