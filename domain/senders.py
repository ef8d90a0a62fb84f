"""Who may send what (报送权限): the relative roles a command's `SENDERS` may name, and the checks.

A command names fixed departments (`natural_resources`) or roles bound per message: the project's
horizontal owner, its district's portal, the department an issue was assigned to, the unit that made
the grant being reclaimed, or anyone.
"""

from __future__ import annotations

from typing import ClassVar, Final, Protocol

from domain import reference
from domain.rejections import Rejection


class Sent(Protocol):
    """A message type as a command class declares it (`domain.commands.Command`): `SENDERS` may send
    the type at all, `senders()` this very message (an admission: the keepers of its library)."""

    TYPE: ClassVar[str]
    SENDERS: ClassVar[frozenset[str]]

    def senders(self) -> frozenset[str]: ...

#: Roles that depend on the project (or on what the message names) rather than a fixed unit.
OWNER: Final = "@owner"  # the project's horizontal owning department
DISTRICT: Final = "@district"  # the project's district portal, `district:<area>`
ASSIGNEE: Final = "@assignee"  # the department an issue was assigned to
GRANTOR: Final = "@grantor"  # the unit that made the grant being reclaimed
RESPONSIBLE: Final = "@responsible"  # the department a supervision case was handed to (v1.2)
ASSIGNER: Final = "@assigner"  # the department that assigned a supervision case (v1.2)
ANYONE: Final = "@anyone"


def could_send(command: type[Sent], department: str) -> bool:
    """Whether `department` may send this type for some project (before any is looked up)."""
    allowed = command.SENDERS
    district_portal = department.startswith(reference.DISTRICT_PORTAL_PREFIX)
    return (department in allowed or bool(allowed & {ANYONE, ASSIGNEE, GRANTOR, RESPONSIBLE, ASSIGNER})
            or (DISTRICT in allowed and district_portal) or (OWNER in allowed and not district_portal))


def require_may_send(command: Sent, department: str, **roles: str | None) -> None:
    """Raise `forbidden` unless `department` may send this message.

    `roles` binds the relative roles for this message: owner, district, assignee, grantor, responsible,
    assigner.
    """
    allowed = command.senders()
    bound = {
        OWNER: roles.get("owner"),
        DISTRICT: reference.district_portal(roles["district"]) if roles.get("district") else None,
        ASSIGNEE: roles.get("assignee"),
        GRANTOR: roles.get("grantor"),
        RESPONSIBLE: roles.get("responsible"),
        ASSIGNER: roles.get("assigner"),
    }
    if ANYONE in allowed or department in allowed:
        return
    if any(bound.get(role) == department for role in allowed):
        return
    library = getattr(command, "library", None)
    if library and allowed != command.SENDERS:  # an admission: the keepers of that library only
        raise Rejection("forbidden.library", department=department, type=command.TYPE, library=library)
    raise Rejection("forbidden.type", department=department, type=command.TYPE)


