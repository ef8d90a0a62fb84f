"""Yearly quota pools (年度指标) of land and energy per district."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.audit import Audit
from domain.project import NAMESPACE
from domain.rejections import Rejection


def quota_drawn(factor: str, detail: Mapping[str, Any]) -> str | None:
    """The district quota (年度指标) a grant of `factor` with these details (its event's fields) draws on:
    land, energy unless exempt, and funds from special bonds (v1.2); else None."""
    if factor in ("land", "energy") and not detail.get("exempt"):
        return factor
    if factor == "funds" and detail.get("source") == "special_bond":
        return "special_bond"
    return None


def quota_pool_id(district: str, year: int, factor: str) -> UUID:
    return uuid5(NAMESPACE, f"quota:{district}:{year}:{factor}")


class QuotaPool(Aggregate):
    """A district's yearly cap of one factor, and what has been drawn from it.

    A grant and its draw are saved together, so optimistic concurrency on the pool means two
    grants racing for the last units cannot both win.
    """

    @staticmethod
    def create_id(district: str, year: int, factor: str, **_: Any) -> UUID:
        return quota_pool_id(district, year, factor)

    @event("Created")
    def __init__(self, district: str, year: int, factor: str, amount: Decimal, audit: Audit) -> None:
        self.district = district
        self.year = year
        self.factor = factor
        self.quota = amount
        self.drawn: dict[str, Decimal] = {}

    @property
    def remaining(self) -> Decimal:
        return self.quota - sum(self.drawn.values(), Decimal(0))

    def check_draw(self, amount: Decimal) -> None:
        if amount > self.remaining:
            raise Rejection("quota_exceeded.remaining", amount=amount, factor=self.factor, district=self.district,
                            year=self.year, remaining=self.remaining, quota=self.quota)

    @event("QuotaSet")
    def set_quota(self, amount: Decimal, audit: Audit) -> None:
        self.quota = amount

    @event("Drawn")
    def draw(self, grant_id: str, project_code: str, amount: Decimal, audit: Audit) -> None:
        self.drawn[grant_id] = amount

    @event("Returned")
    def give_back(self, grant_id: str, reason: str, audit: Audit) -> None:
        self.drawn.pop(grant_id, None)
