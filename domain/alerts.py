"""What supervision was told, and when (督办记录): alert changes recorded as events.

The monitor evaluates `domain.supervision` day by day and records each change of a project's
sedimentation alerts here, in the same transaction as the day it closes, so every change is
recorded once however often the monitor restarts. An approval's alerts (批而未供, v1.2) are recorded
alike, in a record of their own keyed by the approval (`approval_alerts_id`), its `code` the approval id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Mapping
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.audit import Audit
from domain.project import NAMESPACE
from domain.reference import CITY_TZ
from domain.supervision import APPROVAL_RULES, Alert
from domain.texts import Detail

RAISED, ESCALATED, DEESCALATED, CLEARED = CHANGES = ("raised", "escalated", "deescalated", "cleared")


@dataclass(frozen=True)
class AlertChange:
    """One change of one alert of a project (or of an approval: `subject`), as supervision is told of it (督办)."""

    subject: str  # the project code, or the approval id (`Alert.subject`)
    key: str  # `Alert.key`: the rule, and the issue or reduction it concerns
    change: str  # one of CHANGES
    alert: Alert | None  # the alert at its new level; None when cleared


def told_state(level: str, reclaimable: bool) -> str:
    """What supervision is told of an alert's state: its level, and (v1.2) whether it may be reclaimed."""
    return f"{level}:reclaimable" if reclaimable else level


def _gravity(state: str) -> tuple[int, bool]:
    level, _, reclaimable = state.partition(":")
    return (1 if level == "red" else 0), bool(reclaimable)


def alert_changes(told: Mapping[tuple[str, str], str], now: Mapping[tuple[str, str], Alert]) -> list[AlertChange]:
    """What changed between the states supervision was told (`told`, by subject and alert key: `told_state`)
    and the alerts there are now: raised, escalated (to red, or to reclaimable), de-escalated, cleared."""
    changes = []
    for (code, key), alert in now.items():
        before = told.get((code, key))
        state = told_state(alert.level, alert.reclaimable)
        if before is None:
            changes.append(AlertChange(code, key, RAISED, alert))
        elif before != state:
            escalated = _gravity(state) > _gravity(before)
            changes.append(AlertChange(code, key, ESCALATED if escalated else DEESCALATED, alert))
    changes += [AlertChange(code, key, CLEARED, None) for code, key in told if (code, key) not in now]
    return changes


def alerts_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"alerts:{code}")


def approval_alerts_id(approval_id: str) -> UUID:
    """The record of an approval's alerts: apart from any project's, whatever the approval is named."""
    return uuid5(NAMESPACE, f"alerts:approval:{approval_id}")


def about_approval(key: str) -> bool:
    """Is an alert of this key (`Alert.key`) about an approval rather than a project?"""
    return key.partition(":")[0] in APPROVAL_RULES


CLOCK_ID = uuid5(NAMESPACE, "supervision-clock")
#: Who the audit trail says raised an alert: supervision itself (the monitor), not a portal.
MONITOR_DEPARTMENT = "supervision"


def monitor_audit(code: str, key: str, change: str, as_of: date) -> Audit:
    return Audit(message_id=f"monitor:{as_of}:{code}:{key}:{change}", message_type=f"alert.{change}",
                 occurred_at=datetime.combine(as_of, time(0), tzinfo=CITY_TZ), source="yaosu-monitor",
                 department=MONITOR_DEPARTMENT, user="monitor", submitted_by="monitor:yaosu", subject=code)


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
        self.responsible: dict[str, tuple[str, str | None]] = {}
        #: What each alert was about when last changed: (grant_id, factor, case_id) (v1.2).
        self.about: dict[str, tuple[str | None, str | None, str | None]] = {}

    @classmethod
    def of_approval(cls, approval_id: str, district: str) -> SedimentationAlerts:
        """A new record of an approval's alerts, under its own id (`approval_alerts_id`)."""
        return cls._create(cls.Opened, id=approval_alerts_id(approval_id), code=approval_id,  # type: ignore[attr-defined]
                           district=district)

    def record(self, change: AlertChange, day: date) -> None:
        """Record a change found on `day`; a cleared alert names who answered for it when raised, and
        the grant, factor and case it was about when last changed."""
        alert = change.alert
        rule, _, ref = change.key.partition(":")
        department, leader = ((alert.department, alert.leader) if alert
                              else self.responsible.get(change.key, ("", None)))
        grant_id, factor, case_id = ((alert.grant_id, alert.factor, alert.case_id) if alert
                                     else getattr(self, "about", {}).get(change.key, (None, None, None)))
        said = alert.detail if alert else Detail("cleared.no_longer_applies", {"rule": rule, "day": day.isoformat()})
        self.change(key=change.key, rule=rule, ref=ref or None, change=change.change,
                    level=alert.level if alert else None, since=alert.since if alert else None, detail="",
                    audit=monitor_audit(self.code, change.key, change.change, day), department=department,
                    leader=leader, detail_code=said.code, detail_params=dict(said.params), grant_id=grant_id,
                    factor=factor, reclaimable=bool(alert and alert.reclaimable), case_id=case_id,
                    approval_id=self.code if about_approval(change.key) else None)

    class Changed(Aggregate.Event):
        key: str
        rule: str
        ref: str | None
        change: str
        level: str | None
        since: date | None
        #: The words recorded before details had codes; since then "", and the code and its params say it.
        detail: str
        audit: Audit
        department: str
        leader: str | None
        detail_code: str | None
        detail_params: dict[str, Any] | None
        #: v1.2: the grant and factor a factor-level alert concerns, whether it may be reclaimed, the open
        #: case about it, and, for an approval's alert (no project), the approval.
        grant_id: str | None
        factor: str | None
        reclaimable: bool
        case_id: str | None
        approval_id: str | None
        class_version = 4

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(department="", leader=None)  # recorded before alerts named who answers for them

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state.update(detail_code=None, detail_params=None)  # recorded as words, before details had codes

        @staticmethod
        def upcast_v3_v4(state: dict[str, Any]) -> None:
            # Recorded before v1.2: a project's alert of a rule about no grant, not reclaimable, with no case.
            state.update(grant_id=None, factor=None, reclaimable=False, case_id=None, approval_id=None)

        @property
        def project_code(self) -> str | None:
            """The project the alert is about (None: an approval's); `audit.subject` is its subject either way."""
            return None if self.approval_id else self.audit.subject

        @property
        def said(self) -> Detail | str:
            """What the change says: its code and params, or the words an older event recorded."""
            return Detail(self.detail_code, self.detail_params or {}) if self.detail_code else self.detail

    @event(Changed)
    def change(self, key: str, rule: str, ref: str | None, change: str, level: str | None, since: date | None,
               detail: str, audit: Audit, department: str, leader: str | None, detail_code: str | None,
               detail_params: dict[str, Any] | None, grant_id: str | None = None, factor: str | None = None,
               reclaimable: bool = False, case_id: str | None = None, approval_id: str | None = None) -> None:
        if level is None:
            self.levels.pop(key, None)
        else:
            self.levels[key] = level
        self.responsible[key] = (department, leader)
        # `about` is absent from a record opened before v1.2 and replayed from a snapshot: made on first use.
        self.__dict__.setdefault("about", {})[key] = (grant_id, factor, case_id)


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
