"""Who said what, when (审计信息): carried by every stored event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain import reference


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

    @property
    def business_date(self) -> date:
        return self.occurred_at.astimezone(reference.CITY_TZ).date()
