"""Who may act on a supervision case in the console, and the links to its forms (督办): read by the
pages that offer the forms (the alerts page, the case page) and by the forms' routes
(api/console/supervision_forms.py). The pages only offer; the rules decide."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from domain.commands import AssignSupervision
from infra.tokens import Principal

#: The departments whose tokens assign (and so close) cases: the rules' own list.
ASSIGNERS = AssignSupervision.SENDERS
#: The due date an assignment from an alert proposes: this many days after today.
DUE_IN = timedelta(days=15)
#: The rules about one grant, whose alert's `ref` is the grant (contract v1.2): the grant a case from it names
#: when the alert does not say `grant_id` itself.
GRANT_RULES = frozenset({"funds_idle", "land_idle", "energy_idle"})


def department_of(who: Principal | None) -> str | None:
    """The department a token sends as: a portal's own; a supervisor's or an admin's token has none."""
    return who.department if who is not None and who.role == "portal" else None


def may_assign(who: Principal | None) -> bool:
    return department_of(who) in ASSIGNERS


def may_respond(who: Principal | None, case: Mapping[str, Any]) -> bool:
    return case.get("closed_on") is None and department_of(who) == case.get("responsible")


def may_close(who: Principal | None, case: Mapping[str, Any]) -> bool:
    return case.get("closed_on") is None and department_of(who) == case.get("assigned_by")


def assignment_from(alert: Mapping[str, Any], today: date) -> dict[str, str] | None:
    """What the assign form proposes for an alert (its project, rule and grant, the project's department
    as responsible, a due date `DUE_IN` ahead); None for an alert that cannot be assigned: one about an
    approval (no project: case messages are about projects), or one with an open case already."""
    if not alert.get("project_code") or alert.get("case_id"):
        return None
    grant = alert.get("grant_id") or (alert.get("ref") if alert.get("rule") in GRANT_RULES else None)
    return {"project_code": str(alert["project_code"]), "rule": str(alert.get("rule") or ""),
            "grant_id": str(grant or ""), "responsible": str(alert.get("department") or ""),
            "due_date": (today + DUE_IN).isoformat(), "demand": "", "case_id": ""}


def assign_link(alert: Mapping[str, Any], today: date) -> str | None:
    proposed = assignment_from(alert, today)
    if proposed is None:
        return None
    return "/console/supervision/assign?" + urlencode({k: v for k, v in proposed.items() if v})


def case_link(case_id: str) -> str:
    return f"/console/supervision/{quote(case_id, safe='')}"


def alert_action(alert: Mapping[str, Any], who: Principal | None, today: date) -> tuple[str, str] | None:
    """What an alert's row offers: its open case (to everyone), else, to a token that assigns, the
    assign form filled from it; None: nothing."""
    if alert.get("case_id"):
        return "case", case_link(str(alert["case_id"]))
    link = assign_link(alert, today) if may_assign(who) else None
    return ("assign", link) if link else None
