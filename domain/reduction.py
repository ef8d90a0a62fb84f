"""Pollutant reductions (污染物减排量) that emission credits are advanced (预支) from."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.audit import Audit
from domain.project import NAMESPACE
from domain.reference import CITY_CODE
from domain.rejections import Rejection


def reduction_id_of(reduction_id: str) -> UUID:
    return uuid5(NAMESPACE, f"reduction:{reduction_id}")


class EmissionReduction(Aggregate):
    """A reduction an enterprise will make (often by closing), due before the new project produces."""

    @staticmethod
    def create_id(reduction_id: str, **_: Any) -> UUID:
        return reduction_id_of(reduction_id)

    class Registered(Aggregate.Created):
        reduction_id: str
        enterprise: str
        pollutant: str
        tonnes: Decimal
        due_date: date
        audit: Audit
        district: str
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["district"] = CITY_CODE  # registered before a reduction had a district

    @event(Registered)
    def __init__(self, reduction_id: str, enterprise: str, pollutant: str, tonnes: Decimal, due_date: date,
                 audit: Audit, district: str) -> None:
        self.reduction_id = reduction_id
        self.enterprise = enterprise
        self.pollutant = pollutant
        self.tonnes = tonnes
        self.due_date = due_date
        self.district = district
        self.advanced: dict[str, tuple[str, Decimal]] = {}
        self.completed_on: date | None = None

    @property
    def remaining(self) -> Decimal:
        return self.tonnes - sum((t for _, t in self.advanced.values()), Decimal(0))

    def check_advance(self, pollutant: str, tonnes: Decimal) -> None:
        if pollutant != self.pollutant:
            raise Rejection("credit_exceeded.pollutant", reduction=self.reduction_id, pollutant=self.pollutant,
                            asked=pollutant)
        if tonnes > self.remaining:
            raise Rejection("credit_exceeded.remaining", tonnes=tonnes, pollutant=pollutant, remaining=self.remaining,
                            reduction=self.reduction_id)

    @event("Advanced")
    def advance(self, grant_id: str, project_code: str, tonnes: Decimal, audit: Audit) -> None:
        self.advanced[grant_id] = (project_code, tonnes)

    @event("Returned")
    def give_back(self, grant_id: str, reason: str, audit: Audit) -> None:
        self.advanced.pop(grant_id, None)

    @event("Completed")
    def complete(self, audit: Audit) -> None:
        self.completed_on = audit.business_date
