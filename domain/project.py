"""The investment project (投资项目) and everything that happens to it.

Each `@event` method is an event: its body only changes state, so history always replays,
whatever the rules become later. The rules live in the plain methods named `check_*` and in
`domain.handlers`, which run them before any event is triggered.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import date
from decimal import Decimal
from typing import Any, Callable, Iterable, TypeVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, CanMutateAggregate, event

from domain.audit import Audit
from domain.rejections import Rejection

_Method = TypeVar("_Method", bound=Callable[..., None])

NAMESPACE = UUID("6f1d0f3e-8a57-4c52-9c43-5a1e1b9b2a10")

@functools.lru_cache(maxsize=100_000)  # every message about a project asks; codes repeat
def project_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"project:{code}")


@dataclasses.dataclass(frozen=True)
class Grant:
    """One factor granted to a project, with who granted it and on what basis."""

    grant_id: str
    factor: str
    department: str
    granted_on: date
    detail: dict[str, Any]
    quantity: Decimal | None = None
    reclaimed_on: date | None = None
    reclaim_reason: str | None = None


#: What each grant event grants, by the qualified name of its aggregate class and the event's name, as
#: `@grant_event` declares it; read through `grant_events`.
_GRANTS_DECLARED: dict[str, dict[str, tuple[str, str | None]]] = {}


def grant_event(name: str | type, factor: str, quantity: str | None = None) -> Callable[[_Method], _Method]:
    """`@event(name)` for an event that grants `factor`, its quantity in the parameter `quantity` (None: unmeasured).
    `name` may be the event class itself, where it has versions of its own to upcast.

    Declaring the factor beside the event is what puts the event in GRANT_EVENTS, which the read models that
    count grants (stages, factor ledger, sedimentation) follow: a grant event cannot be left out of them.
    """

    def declared(method: _Method) -> _Method:
        declared_on = _GRANTS_DECLARED.setdefault(method.__qualname__.rpartition(".")[0], {})
        key = name if isinstance(name, str) else name.__name__
        if key in declared_on:
            raise TypeError(f"grant event {key} is declared twice")
        declared_on[key] = (factor, quantity)
        return event(name)(method)

    return declared


def grant_events(aggregate: type[Aggregate]) -> dict[type, tuple[str, str | None]]:
    """The event classes of `aggregate` declared by `@grant_event`, each with its factor and quantity attribute."""
    found: dict[type, tuple[str, str | None]] = {}
    for name, (factor, quantity) in _GRANTS_DECLARED.get(aggregate.__qualname__, {}).items():
        event_class = getattr(aggregate, name)
        if quantity is not None and quantity not in {field.name for field in dataclasses.fields(event_class)}:
            raise TypeError(f"grant event {name} has no attribute {quantity!r} for its quantity")
        found[event_class] = (factor, quantity)
    return found


class Project(Aggregate):
    """An investment project, identified by its national project code."""

    @staticmethod
    def create_id(code: str, **_: Any) -> UUID:
        return project_id(code)

    @event("Registered")
    def __init__(
        self,
        code: str,
        name: str,
        district: str,
        sector: str,
        department: str,
        owner: str,
        total_investment: Decimal,
        planned_start: date,
        planned_completion: date,
        revenue_generating: bool,
        priority: str,
        nature: str | None,
        audit: Audit,
    ) -> None:
        self.code = code
        self.name = name
        self.district = district
        self.sector = sector
        self.department = department
        self.owner = owner
        self.total_investment = total_investment
        self.planned_start = planned_start
        self.registered_start = planned_start  # as registered; amendments change `planned_start` (v1.2)
        self.planned_completion = planned_completion
        self.revenue_generating = revenue_generating
        self.priority = priority
        self.nature = nature
        self.registered_on = audit.business_date
        self.stage = "planning"
        self.stage_since = audit.business_date
        self.libraries: dict[str, dict[str, Any]] = {}
        self.plans: dict[int, Decimal] = {}
        self.investment: dict[str, Decimal] = {}
        self.grants: dict[str, Grant] = {}
        self.evaluations: dict[str, bool] = {}
        self.exceptions: dict[str, str] = {}
        self.issues: dict[str, dict[str, Any]] = {}
        self.pitches: list[dict[str, Any]] = []
        self.started_on: date | None = None
        self.completed_on: date | None = None
        self.cancelled_on: date | None = None
        # What the supervision rules look at, with the business day of each (`domain.facts`):
        self.plan_history: list[tuple[int, Decimal, date]] = []
        self.report_history: list[tuple[str, Decimal, date]] = []
        #: Money paid out of each funds grant: grant id → [(day paid, amount)] (资金拨付, v1.2).
        self.disbursements: dict[str, list[tuple[date, Decimal]]] = {}
        #: The plan as amended (项目调整, v1.2): each amendment's day and what it set.
        self.amendments: list[dict[str, Any]] = []
        #: Supervision cases (督办, v1.2) by case id, open or closed.
        self.cases: dict[str, dict[str, Any]] = {}

    # --- state questions the rules ask ---------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.completed_on is not None or self.cancelled_on is not None

    def in_library(self, library: str, year: int | None = None) -> bool:
        membership = self.libraries.get(library)
        if membership is None:
            return False
        years = membership.get("years") or []
        return year is None or not years or year in years

    @property
    def status(self) -> str:
        return project_status(self.started_on, self.completed_on, self.cancelled_on)

    def check_open(self) -> None:
        if self.closed:
            raise Rejection("closed_project.closed", project=self.code, status=self.status)

    def check_may_receive_factor(self) -> None:
        self.check_open()
        if not self.libraries:
            raise Rejection("not_admitted.no_library", project=self.code)

    def live_grant(self, grant_id: str, factor: str) -> Grant:
        grant = self.grants.get(grant_id)
        if grant is None or grant.factor != factor:
            raise Rejection("unknown_reference.no_grant", project=self.code, factor=factor, grant=grant_id)
        if grant.reclaimed_on is not None:
            raise Rejection("invalid_state.grant_reclaimed", grant=grant_id)
        return grant

    # --- events ----------------------------------------------------------------------------

    @event("PlanSet")
    def set_plan(self, year: int, planned_investment: Decimal, audit: Audit) -> None:
        self.plans[year] = planned_investment
        self.plan_history.append((year, planned_investment, audit.business_date))

    @event("Admitted")
    def admit(self, library: str, year: int | None, opinion: str | None, audit: Audit) -> None:
        current = self.libraries.get(library)
        years = sorted({*(current or {}).get("years", []), *([year] if year else [])})
        admitted_on = current["admitted_on"] if current else audit.business_date
        self.libraries[library] = {"admitted_on": admitted_on, "year": year, "years": years, "opinion": opinion}

    @event("Released")
    def release(self, library: str, reason: str, audit: Audit) -> None:
        self.libraries.pop(library, None)

    @event("StageAdvanced")
    def advance_stage(self, stage: str, reason: str | None, audit: Audit) -> None:
        self.stage = stage
        self.stage_since = audit.business_date

    @event("BondEvaluated")
    def evaluate_bond(self, kind: str, evaluator: str, passed: bool, audit: Audit) -> None:
        self.evaluations[kind] = passed

    @event("ExceptionApproved")
    def approve_exception(self, rule: str, reference: str, reason: str, audit: Audit) -> None:
        self.exceptions[reference] = rule

    @grant_event("FundsAllocated", "funds", quantity="amount")
    def allocate_funds(self, source: str, amount: Decimal, document: str | None, audit: Audit) -> None:
        self._grant("funds", audit, amount, source=source, document=document)

    class LandSupplied(Aggregate.Event):
        parcel: str
        area_mu: Decimal
        method: str
        exception: str | None
        audit: Audit
        approval_id: str | None
        start_by: date | None
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Supplied before v1.2: from no batch approval, to start by the plan's start (then in force).
            state["approval_id"] = None
            state["start_by"] = None

    @grant_event(LandSupplied, "land", quantity="area_mu")
    def supply_land(
        self, parcel: str, area_mu: Decimal, method: str, exception: str | None, audit: Audit,
        approval_id: str | None, start_by: date | None,
    ) -> None:
        self._grant("land", audit, area_mu, parcel=parcel, method=method, exception=exception,
                    approval_id=approval_id, start_by=start_by)

    @grant_event("EnergyGranted", "energy", quantity="tce")
    def grant_energy(self, tce: Decimal, year: int, exempt: bool, audit: Audit) -> None:
        self._grant("energy", audit, tce, year=year, exempt=exempt)

    @grant_event("EmissionAdvanced", "emission", quantity="tonnes")
    def advance_emission(self, reduction_id: str, pollutant: str, tonnes: Decimal, audit: Audit) -> None:
        self._grant("emission", audit, tonnes, reduction_id=reduction_id, pollutant=pollutant)

    @grant_event("DataProvided", "data")
    def provide_data(self, kind: str, reference: str, audit: Audit) -> None:
        self._grant("data", audit, None, kind=kind, reference=reference)

    @grant_event("UtilityConnected", "utilities")
    def connect_utility(self, utility: str, reference: str | None, audit: Audit) -> None:
        self._grant("utilities", audit, None, utility=utility, reference=reference)

    @grant_event("TalentAssigned", "talent")
    def assign_talent(self, person: str, role: str, organisation: str | None, audit: Audit) -> None:
        self._grant("talent", audit, None, person=person, role=role, organisation=organisation)

    @event("FactorReclaimed")
    def reclaim(self, factor: str, grant_id: str, reason: str, audit: Audit) -> None:
        grant = self.grants.get(grant_id)
        if grant is not None:  # absent only when replaying a business-time slice
            self.grants[grant_id] = Grant(
                **{**grant.__dict__, "reclaimed_on": audit.business_date, "reclaim_reason": reason}
            )

    @event("IssueEscalated")
    def escalate_issue(
        self, issue_id: str, title: str, level: str, assigned_to: str, due_date: date, audit: Audit
    ) -> None:
        # Escalated again to a higher level (分级调度), an open issue takes the new level, assignee
        # and due date; it keeps the day it was first escalated, and each level it went through.
        earlier = self.issues.get(issue_id)
        self.issues[issue_id] = {
            "issue_id": issue_id,
            "title": title,
            "level": level,
            "assigned_to": assigned_to,
            "due_date": due_date,
            "escalated_on": earlier["escalated_on"] if earlier else audit.business_date,
            "escalated_by": audit.department,
            "levels": [*(earlier.get("levels", []) if earlier else []),
                       {"level": level, "assigned_to": assigned_to, "due_date": due_date,
                        "escalated_on": audit.business_date}],
            "resolved_on": None,
            "resolution": None,
        }

    @event("IssueResolved")
    def resolve_issue(self, issue_id: str, resolution: str, audit: Audit) -> None:
        issue = self.issues.get(issue_id)
        if issue is not None:
            self.issues[issue_id] = {**issue, "resolved_on": audit.business_date, "resolution": resolution}

    @event("ConstructionStarted")
    def start_construction(self, date: date, audit: Audit) -> None:
        self.started_on = date

    @event("InvestmentPitched")
    def pitch(self, event: str, date: date, counterpart: str | None, audit: Audit) -> None:
        self.pitches.append({"event": event, "date": date, "counterpart": counterpart})

    @event("InvestmentReported")
    def report_investment(self, period: str, completed: Decimal, audit: Audit) -> None:
        # A second report for the same month corrects the first.
        self.investment[period] = completed
        self.report_history.append((period, completed, audit.business_date))

    @event("FundsDisbursed")
    def disburse_funds(self, grant_id: str, amount: Decimal, date: date, audit: Audit) -> None:
        self.disbursements.setdefault(grant_id, []).append((date, amount))

    def disbursed(self, grant_id: str) -> Decimal:
        return sum((amount for _, amount in self.disbursements.get(grant_id, ())), Decimal(0))

    @event("Amended")
    def amend(self, planned_start: date | None, planned_completion: date | None, total_investment: Decimal | None,
              reason: str, audit: Audit) -> None:
        changed = {"planned_start": planned_start, "planned_completion": planned_completion,
                   "total_investment": total_investment}
        for name, value in changed.items():
            if value is not None:
                setattr(self, name, value)
        self.amendments.append({"on": audit.business_date, "reason": reason,
                                **{k: v for k, v in changed.items() if v is not None}})

    @event("SupervisionAssigned")
    def assign_supervision(self, case_id: str, rule: str, grant_id: str | None, responsible: str, due_date: date,
                           demand: str, audit: Audit) -> None:
        self.cases[case_id] = {
            "case_id": case_id, "rule": rule, "grant_id": grant_id, "responsible": responsible,
            "assigned_by": audit.department, "assigned_on": audit.business_date, "due_date": due_date,
            "demand": demand, "responses": [], "closed_on": None, "outcome": None, "note": None}

    @event("SupervisionResponded")
    def respond_supervision(self, case_id: str, measures: str, expected_by: date, audit: Audit) -> None:
        case = self.cases.get(case_id)
        if case is not None:
            case["responses"] = [*case["responses"], {"on": audit.business_date, "measures": measures,
                                                      "expected_by": expected_by}]

    @event("SupervisionClosed")
    def close_supervision(self, case_id: str, outcome: str, note: str, audit: Audit) -> None:
        case = self.cases.get(case_id)
        if case is not None:
            case.update(closed_on=audit.business_date, outcome=outcome, note=note)

    def open_case(self, rule: str, grant_id: str | None) -> dict[str, Any] | None:
        """The open supervision case of this rule (and grant), if any: there is at most one."""
        return next((case for case in self.cases.values() if case["closed_on"] is None
                     and case["rule"] == rule and case["grant_id"] == grant_id), None)

    @event("Completed")
    def complete(self, date: date, audit: Audit) -> None:
        self.completed_on = date

    @event("Cancelled")
    def cancel(self, reason: str, audit: Audit) -> None:
        self.cancelled_on = audit.business_date

    def _grant(self, factor: str, audit: Audit, quantity: Decimal | None, **detail: Any) -> None:
        self.grants[audit.message_id] = Grant(
            grant_id=audit.message_id,
            factor=factor,
            department=audit.department,
            granted_on=audit.business_date,
            detail=detail,
            quantity=quantity,
        )

    # --- read side -------------------------------------------------------------------------

    def completed_in(self, year: int) -> Decimal:
        prefix = f"{year}-"
        return sum((v for k, v in self.investment.items() if k.startswith(prefix)), Decimal(0))

    def has_factor(self, factor: str) -> bool:
        if factor == "coordination":
            leaders = sum(1 for g in self.grants.values() if g.factor == "talent" and is_leader(g.detail.get("role")))
            return coordination_in_place(len(self.issues), leaders)
        return any(g.factor == factor and g.reclaimed_on is None for g in self.grants.values())


STATUSES = ("not_started", "under_construction", "completed", "cancelled")


def project_status(started_on: date | None, completed_on: date | None, cancelled_on: date | None) -> str:
    """A project's status (项目状态) from its milestones: the one vocabulary of state and board."""
    if cancelled_on is not None:
        return "cancelled"
    if completed_on is not None:
        return "completed"
    return "under_construction" if started_on is not None else "not_started"


def is_leader(role: str | None) -> bool:
    """A person assigned as the project's responsible leader (包抓领导)."""
    return role == "responsible_leader"


def coordination_in_place(issues_escalated: int, leaders_assigned: int) -> bool:
    """Coordination (重大协调服务) is a factor in place once an issue was escalated or a leader assigned."""
    return bool(issues_escalated or leaders_assigned)


def happened_on(domain_event: Any) -> date:
    """When an event happened in business time: the payload's date where it has one."""
    if isinstance(domain_event, (Project.ConstructionStarted, Project.Completed, Project.InvestmentPitched)):
        return domain_event.date
    return domain_event.audit.business_date  # type: ignore[no-any-return]


def project_as_of(events: Iterable[CanMutateAggregate[UUID]], as_of: date) -> Project | None:
    """The project as it stood at the end of `as_of` in business time (业务时间).

    Events are applied in store order, skipping those that happened after `as_of` (by their
    occurred_at, or the date in their payload for a start or a completion), so a late report of
    an early fact counts from the day it happened. Versions are not checked because the slice
    has gaps; event bodies only assign state, so any slice applies.
    """
    stream = iter(events)
    registered = next(stream, None)
    if registered is None or happened_on(registered) > as_of:
        return None
    project: Project = registered.mutate(None)  # type: ignore[assignment]
    for domain_event in stream:
        if happened_on(domain_event) <= as_of:
            domain_event.apply(project)
            project.version = domain_event.originator_version
    return project


#: Events that grant a factor: event class → (factor, the attribute holding its quantity), derived from the
#: `@grant_event` declarations so a new grant event is in every read model that counts grants.
GRANT_EVENTS: dict[type, tuple[str, str | None]] = grant_events(Project)
