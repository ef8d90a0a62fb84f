"""Who said what, when (审计信息): carried by every stored event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from domain import reference
from domain.texts import Detail


@dataclass(frozen=True)
class PolicyWarning:
    """A policy priority the message did not follow (政策提示): accepted, and flagged."""

    code: str
    #: Why, as the catalogue words it; an event stored before reasons had codes has its words instead.
    reason: Detail | str

    @staticmethod
    def stored(value: Any) -> PolicyWarning:
        """A warning as an event keeps it: a [code, words] pair (older events), or its code and reason's code."""
        if isinstance(value, PolicyWarning):
            return value
        if isinstance(value, dict):
            return PolicyWarning(value["code"], Detail(value["detail_code"], value.get("detail_params") or {}))
        return PolicyWarning(*value)

    def stored_form(self) -> list[str] | dict[str, Any]:
        if isinstance(self.reason, str):
            return [self.code, self.reason]
        return {"code": self.code, "detail_code": self.reason.code, "detail_params": dict(self.reason.params)}


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
        # Read back from the store, warnings come as they are stored (`PolicyWarning.stored_form`).
        object.__setattr__(self, "warnings", tuple(PolicyWarning.stored(w) for w in self.warnings))

    @property
    def business_date(self) -> date:
        return self.occurred_at.astimezone(reference.CITY_TZ).date()
