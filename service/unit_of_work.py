"""The unit of work (工作单元) of one attempt at a batch of messages, over the event store."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Callable, Iterable
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate

from domain.allocation import Allocation, allocation_id_of
from domain.approval import LandApproval, approval_id_of
from domain.casebook import CaseNumber, case_number_id
from domain.parking import ParkedMessage
from domain.policy import PolicySettings
from domain.project import Project, project_id
from domain.quota import QuotaPool, quota_pool_id
from domain.receipt import MessageReceipt
from domain.reduction import EmissionReduction, reduction_id_of
from domain.reference import is_project_code
from domain.supervision import Thresholds

#: The allocation advice of the read side (v1.2): (year, factor, total, as_of) → [(district, share)], or
#: None when it cannot say (not caught up, no ranking). The composition root gives the real one.
Advisor = Callable[[int, str, Decimal, date], "list[tuple[str, Decimal]] | None"]


def no_advice(year: int, factor: str, total: Decimal, as_of: date) -> list[tuple[str, Decimal]] | None:
    """The advisor of a ledger given none: no advice, so no `allocation_deviates` and none kept."""
    return None


#: Message types whose payload names an aggregate of its own by an id field, and how to find it.
_NAMED_IDS: dict[str, Callable[[str], UUID]] = {
    "reduction_id": reduction_id_of, "approval_id": approval_id_of, "allocation_id": allocation_id_of,
    "case_id": case_number_id}


class BatchUnitOfWork:
    """What one attempt at a batch of messages reads and changes (`domain.handlers.UnitOfWork`).

    It loads aggregates through `load_many` (the application's cache, then the store), notes the
    version at which it read each (the recorder refuses the batch if any moved meanwhile), and
    collects the events of each message in message order.
    """

    def __init__(self, load_many: Callable[[Iterable[UUID]], dict[UUID, Any]], *, look_up_receipts: bool,
                 policy: PolicySettings = PolicySettings(), thresholds: Thresholds = Thresholds(),
                 advisor: Advisor = no_advice) -> None:
        self.load_many = load_many
        self.look_up_receipts = look_up_receipts
        self.policy = policy
        self.thresholds = thresholds  # the alert rules' settings: a case is assigned for an alert, closed once gone
        self.advisor = advisor
        self.loaded: dict[UUID, Aggregate | None] = {}
        self.read_versions: dict[UUID, int] = {}
        self.touched: dict[UUID, Aggregate] = {}
        self.events: list[CanMutateAggregate[UUID]] = []

    def prefetch(self, bodies: Iterable[Any], also: Iterable[UUID] = ()) -> None:
        """Load, in one query, the projects, reductions, approvals, allocations, case numbers and pools these
        messages name (and `also`)."""
        wanted = set(also)
        for body in bodies:
            if not isinstance(body, dict):
                continue
            code, payload = body.get("project_code"), body.get("payload")
            if isinstance(code, str) and is_project_code(code):  # (ids of codes are cached: real codes only)
                wanted.add(project_id(code))
            if isinstance(payload, dict):
                wanted.update(named(payload[name]) for name, named in _NAMED_IDS.items()
                              if isinstance(payload.get(name), str))
                if body.get("type") == "quota.set":
                    wanted.add(quota_pool_id(str(payload.get("district")), payload.get("year"), str(payload.get("factor"))))
                if body.get("type") == "allocation.adopted" and isinstance(payload.get("shares"), list):
                    wanted.update(quota_pool_id(str(share.get("district")), payload.get("year"),
                                                str(payload.get("factor")))
                                  for share in payload["shares"][:100] if isinstance(share, dict))
        self._load(self.load_many(wanted - self.loaded.keys()))

    def _load(self, found: dict[UUID, Any]) -> None:
        for aggregate_id, aggregate in found.items():
            self.loaded[aggregate_id] = aggregate
            self.read_versions[aggregate_id] = aggregate.version if aggregate is not None else 0

    def _get(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self.loaded:
            self._load(self.load_many([aggregate_id]))
        aggregate = self.loaded[aggregate_id]
        if aggregate is not None:
            self.touched[aggregate_id] = aggregate
        return aggregate

    def find_project(self, code: str) -> Project | None:
        return self._get(project_id(code))

    def find_pool(self, district: str, year: int, factor: str) -> QuotaPool | None:
        return self._get(quota_pool_id(district, year, factor))

    def find_reduction(self, reduction_id: str) -> EmissionReduction | None:
        return self._get(reduction_id_of(reduction_id))

    def find_approval(self, approval_id: str) -> LandApproval | None:
        return self._get(approval_id_of(approval_id))

    def find_allocation(self, allocation_id: str) -> Allocation | None:
        return self._get(allocation_id_of(allocation_id))

    def find_case(self, case_id: str) -> CaseNumber | None:
        return self._get(case_number_id(case_id))

    def advice(self, year: int, factor: str, total: Decimal, as_of: date) -> list[tuple[str, Decimal]] | None:
        return self.advisor(year, factor, total, as_of)

    def find_receipt(self, receipt: UUID, look_up: bool = False) -> MessageReceipt | None:
        # The first attempt at a batch assumes its messages are new: no look-up per message
        # (a receipt written for one that was not collides on its first version), unless asked.
        if receipt in self.loaded or self.look_up_receipts or look_up:
            return self._get(receipt)
        return None

    def find_parked(self, parked: UUID) -> ParkedMessage | None:
        # Read with the batch (`prefetch`): parking writes no receipt, so nothing else would tell.
        return self._get(parked)  # type: ignore[no-any-return]

    def load(self, ids: Iterable[UUID]) -> list[Any]:
        """Load these aggregates now, in one query; those stored, in the order asked."""
        wanted = list(ids)
        self._load(self.load_many([i for i in wanted if i not in self.loaded]))
        return [self.loaded[i] for i in wanted if self.loaded.get(i) is not None]

    def add(self, aggregate: Aggregate) -> None:
        self.loaded[aggregate.id] = aggregate
        self.touched[aggregate.id] = aggregate

    def end_message(self) -> int:
        """Move this message's events into the batch, in message order; index of its last."""
        for aggregate in self.touched.values():
            self.events.extend(aggregate.collect_events())
        self.touched.clear()
        return len(self.events) - 1

    def abandon_message(self) -> None:
        # Handlers check before they change anything; a rejection after a change is a bug
        # that would otherwise leave half a message in the batch.
        for aggregate in self.touched.values():
            if aggregate.pending_events:
                raise RuntimeError(f"a rule was checked after {type(aggregate).__name__} changed")
        self.touched.clear()
