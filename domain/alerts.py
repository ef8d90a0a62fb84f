"""What supervision was told, and when (督办记录): alert changes recorded as events.

The monitor evaluates `domain.supervision` day by day and records each change of a project's
sedimentation alerts here, in the same transaction as the day it closes, so every change is
recorded once however often the monitor restarts.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.codes import CITY_TZ
from domain.messages import Audit
from domain.project import NAMESPACE

CHANGES = ("raised", "escalated", "deescalated", "cleared")


def alerts_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"alerts:{code}")


CLOCK_ID = uuid5(NAMESPACE, "supervision-clock")


def monitor_audit(code: str, key: str, change: str, as_of: date) -> Audit:
    return Audit(message_id=f"monitor:{as_of}:{code}:{key}:{change}", message_type=f"alert.{change}",
                 occurred_at=datetime.combine(as_of, time(0), tzinfo=CITY_TZ), source="yaosu-monitor",
                 department="supervision", user="monitor", submitted_by="monitor:yaosu", subject=code)


class SedimentationAlerts(Aggregate):
    """A project's sedimentation alerts (要素沉淀预警) as supervision was notified of them."""

    @staticmethod
    def create_id(code: str, **_: Any) -> UUID:
        return alerts_id(code)

    @event("Opened")
    def __init__(self, code: str, district: str) -> None:
        self.code = code
        self.district = district
        self.levels: dict[str, str] = {}

    @event("Changed")
    def change(self, key: str, rule: str, ref: str | None, change: str, level: str | None, since: date | None,
               detail: str, audit: Audit) -> None:
        if level is None:
            self.levels.pop(key, None)
        else:
            self.levels[key] = level


class SupervisionClock(Aggregate):
    """The last day the monitor evaluated completely."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return CLOCK_ID

    @event("Started")
    def __init__(self, first_day: date) -> None:
        self.evaluated_through: date | None = None

    @event("DayEvaluated")
    def evaluated(self, day: date) -> None:
        self.evaluated_through = day
