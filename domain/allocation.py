"""Allocation decisions (要素分配决定, 大干大支持): a city total of land, energy or special-bond quota split
over the districts, binding (v1.2), with the advice it departed from kept beside it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.audit import Audit
from domain.project import NAMESPACE


def allocation_id_of(allocation_id: str) -> UUID:
    return uuid5(NAMESPACE, f"allocation:{allocation_id}")


class Allocation(Aggregate):
    """One adopted allocation: its shares ([{"district", "amount"}]) and, where it departed from the
    advice by more than the tolerance, that advice ([{"district", "share"}])."""

    @staticmethod
    def create_id(allocation_id: str, **_: Any) -> UUID:
        return allocation_id_of(allocation_id)

    @event("Adopted")
    def __init__(self, allocation_id: str, year: int, factor: str, total: Decimal, shares: list[dict[str, Any]],
                 as_of: date, basis: str, advice: list[dict[str, Any]] | None, audit: Audit) -> None:
        self.allocation_id = allocation_id
        self.year = year
        self.factor = factor
        self.total = total
        self.shares = shares
        self.as_of = as_of
        self.basis = basis
        self.advice = advice
