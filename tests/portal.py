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
    "funds.allocated": ("finance", {"source": "municipal_budget", "amount": 500, "document": "兰财〔2021〕1号"}),
    "land.supplied": ("natural_resources", {"parcel": "LZ-2021-017", "area_mu": 86.5, "method": "transfer"}),
    "energy.granted": ("development_reform", {"tce": 1000, "year": 2021}),
    "emission.advanced": ("ecology_environment", {"reduction_id": "RD-1", "pollutant": "SO2", "tonnes": 10}),
    "data.provided": ("big_data", {"kind": "planning_data", "reference": "D-1"}),
    "utility.connected": ("power_supply", {"utility": "power", "reference": "P-1"}),
    "talent.assigned": ("organisation", {"person": "李四", "role": "responsible_leader"}),
    "issue.escalated": ("transport", {"issue_id": "I-1", "title": "征地协调", "level": "city",
                                      "assigned_to": "natural_resources", "due_date": "2021-04-30"}),
}
