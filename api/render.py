"""How a project's state looks in JSON (events are shown by `infra.presenter`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from domain import reference
from domain.project import Project
from infra.catalogue import name_of


def project_json(project: Project, as_of: date | None) -> dict[str, Any]:
    factors: dict[str, list[dict[str, Any]]] = {f: [] for f in reference.FACTORS if f != "coordination"}
    totals: dict[str, Decimal] = {}
    for grant in project.grants.values():
        factors[grant.factor].append({
            "grant_id": grant.grant_id,
            "department": grant.department,
            "granted_on": grant.granted_on,
            "quantity": grant.quantity,
            **grant.detail,
            "reclaimed_on": grant.reclaimed_on,
            "reclaim_reason": grant.reclaim_reason,
        })
        if grant.quantity is not None and grant.reclaimed_on is None:
            totals[grant.factor] = totals.get(grant.factor, Decimal(0)) + grant.quantity
    years = sorted(set(project.plans) | {int(p[:4]) for p in project.investment})
    progress = []
    for year in years:
        planned = project.plans.get(year)
        completed = project.completed_in(year)
        progress.append({
            "year": year,
            "planned": planned,
            "completed": completed,
            "share": round(float(completed / planned), 4) if planned else None,
        })
    return {
        "code": project.code,
        "as_of": as_of,
        "version": project.version,
        "name": project.name,
        "district": project.district,
        "district_name": name_of("district", project.district),
        "sector": project.sector,
        "department": project.department,
        "owner": project.owner,
        "total_investment": project.total_investment,
        "planned_start": project.planned_start,
        "planned_completion": project.planned_completion,
        "revenue_generating": project.revenue_generating,
        "priority": project.priority,
        "nature": project.nature,
        "registered_on": project.registered_on,
        "status": project.status,
        "stage": project.stage,
        "stage_since": project.stage_since,
        "started_on": project.started_on,
        "completed_on": project.completed_on,
        "cancelled_on": project.cancelled_on,
        "libraries": [{"library": name, **membership} for name, membership in sorted(project.libraries.items())],
        "stage_checklist": {f: project.has_factor(f) for f in reference.STAGE_FACTORS[project.stage]},
        "factors": factors,
        "factor_totals": totals,
        "plans": [{"year": y, "planned_investment": v} for y, v in sorted(project.plans.items())],
        "investment": [{"period": p, "completed": v} for p, v in sorted(project.investment.items())],
        "progress": progress,
        "bond_evaluations": project.evaluations,
        "exceptions": [{"reference": ref, "rule": rule} for ref, rule in project.exceptions.items()],
        "issues": list(project.issues.values()),
    }
