"""Who said what, when (审计信息): carried by every stored event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain import reference


@dataclass(frozen=True)
class PolicyWarning:
    """A policy priority the message did not follow (政策提示): accepted, and flagged."""

    code: str
    reason: str


@dataclass(frozen=True)
class Audit:
    """Who said what, when: carried by every stored event (审计信息)."""

    message_id: str
    message_type: str
    occurred_at: datetime
    source: str
    department: str
    user: str
    submitted_by: str
    #: The project code, or what else the message is about (a reduction id, a district).
    subject: str
    #: Policy priorities the message did not follow (older events: none).
    warnings: tuple[PolicyWarning, ...] = ()

    def __post_init__(self) -> None:
        # Read back from the store, warnings come as [code, reason] pairs.
        object.__setattr__(self, "warnings", tuple(w if isinstance(w, PolicyWarning) else PolicyWarning(*w)
                                                   for w in self.warnings))

    @property
    def business_date(self) -> date:
        return self.occurred_at.astimezone(reference.CITY_TZ).date()
