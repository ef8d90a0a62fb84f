"""An operator's decision to skip one stored event for one read model (读模型跳过决定).

A read model that cannot apply a stored event stops there, and says so, rather than skipping it
(`projections.runner`). Going past it is a decision someone takes and answers for: it is recorded
in the store like any other fact, so it is audited, hash-chained, and taken again by every later
build of that read model — nothing is ever skipped silently.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.audit import Audit
from domain.project import NAMESPACE


def skip_id(read_model: str, position: int) -> UUID:
    """Where the decision to skip the event at `position` for `read_model` lives: one per pair."""
    return uuid5(NAMESPACE, f"skip:{read_model}:{position}")


#: What the audit trail calls an operator's decision, and whose it is.
EVENT_SKIPPED, OPERATOR_DEPARTMENT = "read_model.event_skipped", "operations"


def operator_audit(read_model: str, position: int, operator: str, at: datetime) -> Audit:
    """Who decided, as the audit trail shows it (an operator at the command line, not a portal)."""
    return Audit(message_id=f"skip:{read_model}:{position}", message_type=EVENT_SKIPPED,
                 occurred_at=at, source="yaosu-cli", department=OPERATOR_DEPARTMENT, user=operator,
                 submitted_by=f"operator:{operator}", subject=read_model)


class EventSkip(Aggregate):
    """The decision that `read_model` goes on past the stored event at `position` without it."""

    @staticmethod
    def create_id(read_model: str, position: int, **_: Any) -> UUID:
        return skip_id(read_model, position)

    @event("Decided")
    def __init__(self, read_model: str, position: int, event_type: str, error: str, reason: str,
                 audit: Audit) -> None:
        self.read_model = read_model
        self.position = position
        #: What the event was and why the read model could not apply it, as it was halted.
        self.event_type = event_type
        self.error = error
        self.reason = reason
        self.audit = audit
