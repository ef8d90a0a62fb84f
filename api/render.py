"""How stored things look in JSON: events of the audit trail, project state, results."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from domain import codes
from domain.messages import Audit
from domain.project import Project
from infra.ledger import StoredItem

_HIDDEN = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "audit"})
_KINDS = {"Project": "project", "QuotaPool": "quota", "EmissionReduction": "reduction", "MessageReceipt": "message"}


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        # Exact digits, as a JSON number: amounts are money and must not pass through float.
        return orjson.Fragment(format(obj, "f"))
    raise TypeError(f"cannot render {type(obj).__name__}")


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


def dotted_name(event: Any) -> str:
    """`Project.LandSupplied` → `project.land_supplied`."""
    owner, _, name = type(event).__qualname__.partition(".")
    return f"{_KINDS.get(owner, owner.lower())}.{re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()}"


def event_json(item: StoredItem) -> dict[str, Any]:
    event = item.event
    audit: Audit | None = getattr(event, "audit", None)
    data = {k: v for k, v in vars(event).items() if k not in _HIDDEN}
    rendered: dict[str, Any] = {
        "position": item.position,
        # An event caused by a portal message carries that message's type.
        "type": audit.message_type if audit else dotted_name(event),
        "event": dotted_name(event),
        "subject": audit.subject if audit else data.get("subject"),
        "data": data,
        "occurred_at": audit.occurred_at if audit else None,
        "recorded_at": event.timestamp,
        "actor": {"department": audit.department, "user": audit.user} if audit else None,
        "source": audit.source if audit else None,
        "message_id": audit.message_id if audit else data.get("message_id"),
        "submitted_by": audit.submitted_by if audit else data.get("submitted_by"),
    }
    return rendered


def rejection_json(item: StoredItem) -> dict[str, Any]:
    event: Any = item.event
    try:
        body: Any = orjson.loads(event.body)
    except orjson.JSONDecodeError:
        body = event.body
    return {
        "position": item.position,
        "message_id": event.message_id,
        "type": event.message_type,
        "code": event.code,
        "reason": event.reason,
        "subject": event.subject,
        "received_at": event.timestamp,
        "submitted_by": event.submitted_by,
        "channel": event.channel,
        "body": body,
    }


def project_json(project: Project, as_of: date | None) -> dict[str, Any]:
    factors: dict[str, list[dict[str, Any]]] = {f: [] for f in codes.FACTORS if f != "coordination"}
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
    status = "cancelled" if project.cancelled_on else "completed" if project.completed_on else (
        "under_construction" if project.started_on else "not_started")
    return {
        "code": project.code,
        "as_of": as_of,
        "version": project.version,
        "name": project.name,
        "district": project.district,
        "district_name": codes.DISTRICTS.get(project.district),
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
        "status": status,
        "stage": project.stage,
        "stage_since": project.stage_since,
        "started_on": project.started_on,
        "completed_on": project.completed_on,
        "cancelled_on": project.cancelled_on,
        "libraries": [{"library": name, **membership} for name, membership in sorted(project.libraries.items())],
        "stage_checklist": {f: project.has_factor(f) for f in codes.STAGE_FACTORS[project.stage]},
        "factors": factors,
        "factor_totals": totals,
        "plans": [{"year": y, "planned_investment": v} for y, v in sorted(project.plans.items())],
        "investment": [{"period": p, "completed": v} for p, v in sorted(project.investment.items())],
        "progress": progress,
        "bond_evaluations": project.evaluations,
        "exceptions": [{"reference": ref, "rule": rule} for ref, rule in project.exceptions.items()],
        "issues": list(project.issues.values()),
    }
