"""The city's register of supervision case numbers (督办编号): a case lives in its project (`Project.cases`,
where the rules of one open case per project, rule and grant hold), its number here, unique in the city,
with the project it belongs to (v1.2)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.audit import Audit
from domain.project import NAMESPACE


def case_number_id(case_id: str) -> UUID:
    return uuid5(NAMESPACE, f"case:{case_id}")


class CaseNumber(Aggregate):
    """A case number taken, and the project whose case it is."""

    @staticmethod
    def create_id(case_id: str, **_: Any) -> UUID:
        return case_number_id(case_id)

    @event("Taken")
    def __init__(self, case_id: str, project_code: str, audit: Audit) -> None:
        self.case_id = case_id
        self.project_code = project_code
