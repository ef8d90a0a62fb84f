"""Land approved for construction (农用地转用/土地征收批复, 批次用地), supplied to projects bit by bit (v1.2).

Land approved and not supplied is sedimentation of its own (批而未供): the rule `land_unsupplied`
watches each approval's area not yet supplied.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.audit import Audit
from domain.project import NAMESPACE


def approval_id_of(approval_id: str) -> UUID:
    return uuid5(NAMESPACE, f"approval:{approval_id}")


class LandApproval(Aggregate):
    """A batch of land approved in a district, and what of it has been supplied (by the grant that took it)."""

    @staticmethod
    def create_id(approval_id: str, **_: Any) -> UUID:
        return approval_id_of(approval_id)

    @event("Approved")
    def __init__(self, approval_id: str, district: str, area_mu: Decimal, date: date, audit: Audit) -> None:
        self.approval_id = approval_id
        self.district = district
        self.area_mu = area_mu
        self.approved_on = date
        self.supplied: dict[str, Decimal] = {}

    @property
    def unsupplied(self) -> Decimal:
        return self.area_mu - sum(self.supplied.values(), Decimal(0))

    @event("Drawn")
    def draw(self, grant_id: str, project_code: str, area_mu: Decimal, audit: Audit) -> None:
        self.supplied[grant_id] = area_mu
