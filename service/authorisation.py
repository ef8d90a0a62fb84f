"""Who may do what (授权): whose message ids a message draws on, which tokens may submit, and which
stored bodies a principal may read. The tokens themselves are kept by `infra.tokens`."""

from __future__ import annotations

from typing import Any

from domain.parking import ParkedMessage
from domain.receipt import MessageReceipt
from domain.rejections import Rejection
from infra.presenter import original_body
from infra.tokens import Principal


def claimed_department(body: Any) -> str | None:
    """The department a raw body says it comes from, read before the body is validated."""
    actor = body.get("actor") if isinstance(body, dict) else None
    department = actor.get("department") if isinstance(actor, dict) else None
    return department if isinstance(department, str) else None


def sender_of(principal: Principal, body: Any) -> str:
    """Whose message ids a message draws on: a portal's own; otherwise the department it names."""
    if principal.role == "portal":
        return str(principal.department)
    if principal.role == "supervisor":
        return f"supervisor:{principal.name}"
    return claimed_department(body) or "-"


def refuse_token(principal: Principal, body: Any) -> None:
    if principal.role == "supervisor":
        raise Rejection("forbidden.supervisor_token")
    if principal.role == "portal":
        department = claimed_department(body)
        if department != principal.department:
            raise Rejection("forbidden.token_department", allowed=principal.department, department=department)


def sent_by(rejected: Any, principal: Principal) -> bool:
    """Whether a kept rejection is of a message this principal sent: over HTTP with its token, or
    over Kafka (which carries no token) as its department."""
    if rejected.submitted_by == f"{principal.role}:{principal.name}":
        return True
    return bool(rejected.channel == "kafka" and claimed_department(original_body(rejected.body)) == principal.department)


def may_read_body(principal: Principal, event: Any) -> bool:
    """Whether this principal may read the message body (and what quotes it) that an event keeps:
    a portal only of messages it sent (contract v1.1, "a portal sees only its own rejections");
    supervisors and admins every one. An event that could not be decoded (None) cannot say who sent
    it, so a portal is not shown its stored data."""
    if principal.role != "portal":
        return True
    if event is None:
        return False
    if isinstance(event, MessageReceipt.Rejected):
        return sent_by(event, principal)
    if isinstance(event, ParkedMessage.Parked):
        return bool(event.sender == principal.department)  # parked from Kafka: its sender is the department it names
    return True


def may_read_parked(principal: Principal, body: Any) -> bool:
    """`may_read_body` of a parked message's body as the parked read model keeps it: from Kafka, which
    carries no token, a portal's own message is one sent as its department."""
    return principal.role != "portal" or claimed_department(body) == principal.department
