"""Commands (指令): one small frozen dataclass per portal message type, with who may send it.

A command's fields are the contract's payload; `field(metadata=...)` states choices and bounds, which
`domain.envelope` checks when it parses a payload and `api.schemas` publishes as OpenAPI. Defining a
subclass registers it in `COMMANDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar, Final

from domain import reference
from domain.senders import ANYONE, ASSIGNEE, ASSIGNER, DISTRICT, GRANTOR, OWNER, RESPONSIBLE

#: Every command class by its message type (filled as the classes below are defined).
COMMANDS: Final[dict[str, type[Command]]] = {}

#: Who may admit a project to each reserve library, and release it from it (v1.2): the library's
#: lead units. Only the 一纵一横 library is open to the project's own horizontal owner (横向) and to
#: its district's portal (纵向); the others unlock land and money, and are reviewed by the units that
#: give them.
LIBRARY_KEEPERS: Final[dict[str, frozenset[str]]] = {
    "municipal": frozenset({"development_reform", OWNER, DISTRICT}),
    **{library: frozenset({"development_reform"})
       for library in ("fyp14", "rolling3y", "annual", "central_budget", "enterprise_bond")},
    **{library: frozenset({"development_reform", "finance"})
       for library in ("municipal_budget", "special_bond", "general_bond")},
    "investment_attraction": frozenset({"cooperation_exchange", "investment_promotion", "development_reform"}),
    "green_fund": frozenset({"finance", "financial_affairs", "development_reform"}),
}
assert LIBRARY_KEEPERS.keys() == set(reference.LIBRARIES), "every library has its keepers"
#: Anyone who keeps some library: who could send an admission or a release at all.
ANY_KEEPER: Final = frozenset().union(*LIBRARY_KEEPERS.values())

YEAR: Final = {"min": reference.FIRST_YEAR, "max": reference.LAST_YEAR}
POSITIVE: Final = {"positive": True}
NON_NEGATIVE: Final = {"non_negative": True}
#: Free text (an opinion, a reason, a title): the one place tab and newline may stand (contract v1.2).
FREE_TEXT: Final = {"free_text": True}


def choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


class Command:
    """Base of every command: its message type, who may send it, and whether it is about a project.

    Subclasses are registered in `COMMANDS` by their `TYPE` as they are defined: a message type is
    declared once, here, with its handler beside it in `domain.handlers`.
    """

    #: The dotted message type of the contract.
    TYPE: ClassVar[str]
    #: Departments that may send it, and the roles of `domain.senders` bound per message.
    SENDERS: ClassVar[frozenset[str]]
    #: Messages about something other than a project (reductions, quotas) carry no code.
    NEEDS_PROJECT: ClassVar[bool] = True

    def senders(self) -> frozenset[str]:
        """Who may send this very message: `SENDERS`, unless what it names narrows them (a library)."""
        return self.SENDERS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.TYPE in COMMANDS:
            raise TypeError(f"two commands for {cls.TYPE}: {COMMANDS[cls.TYPE].__name__} and {cls.__name__}")
        COMMANDS[cls.TYPE] = cls


@dataclass(frozen=True)
class RegisterProject(Command):
    TYPE = "project.registered"
    SENDERS = frozenset({"development_reform", DISTRICT})
    name: str
    district: str = field(metadata=choices(*reference.DISTRICTS))
    sector: str = field(metadata=choices(*reference.SECTORS))
    department: str = field(metadata=choices(*reference.DEPARTMENTS))
    owner: str
    total_investment: Decimal = field(metadata=POSITIVE)
    planned_start: date
    planned_completion: date
    revenue_generating: bool
    priority: str = field(default="none", metadata=choices(*reference.PRIORITIES))
    nature: str | None = None


@dataclass(frozen=True)
class SetPlan(Command):
    TYPE = "plan.set"
    SENDERS = frozenset({"development_reform"})
    year: int = field(metadata=YEAR)
    planned_investment: Decimal = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class AdmitProject(Command):
    TYPE = "project.admitted"
    SENDERS = ANY_KEEPER
    library: str = field(metadata=choices(*reference.LIBRARIES))
    year: int | None = field(default=None, metadata=YEAR)
    opinion: str | None = field(default=None, metadata=FREE_TEXT)

    def senders(self) -> frozenset[str]:
        return LIBRARY_KEEPERS[self.library]


@dataclass(frozen=True)
class ReleaseProject(Command):
    TYPE = "project.released"
    SENDERS = ANY_KEEPER
    library: str = field(metadata=choices(*reference.LIBRARIES))
    reason: str = field(metadata=FREE_TEXT)

    def senders(self) -> frozenset[str]:
        return LIBRARY_KEEPERS[self.library]


@dataclass(frozen=True)
class AdvanceStage(Command):
    TYPE = "stage.advanced"
    SENDERS = frozenset({"development_reform"})
    stage: str = field(metadata=choices(*reference.STAGES[1:]))
    reason: str | None = field(default=None, metadata=FREE_TEXT)


@dataclass(frozen=True)
class AllocateFunds(Command):
    TYPE = "funds.allocated"
    SENDERS = frozenset({"development_reform", "finance"})
    source: str = field(metadata=choices(*reference.FUND_SOURCES))
    amount: Decimal = field(metadata=POSITIVE)
    document: str | None = None


@dataclass(frozen=True)
class EvaluateBond(Command):
    TYPE = "bond.evaluated"
    SENDERS = frozenset({"finance"})
    kind: str = field(metadata=choices(*reference.EVALUATION_KINDS))
    evaluator: str
    passed: bool


@dataclass(frozen=True)
class SupplyLand(Command):
    TYPE = "land.supplied"
    SENDERS = frozenset({"natural_resources"})
    parcel: str
    area_mu: Decimal = field(metadata=POSITIVE)
    method: str = field(metadata=choices(*reference.LAND_METHODS))
    exception: str | None = None
    #: The batch approval (批次用地) the land is supplied from (v1.2).
    approval_id: str | None = None
    #: The start of construction agreed in the supply contract (约定动工日期; default the planned start).
    start_by: date | None = None


@dataclass(frozen=True)
class GrantEnergy(Command):
    TYPE = "energy.granted"
    SENDERS = frozenset({"development_reform"})
    tce: Decimal = field(metadata=POSITIVE)
    year: int = field(metadata=YEAR)
    exempt: bool = False


@dataclass(frozen=True)
class RegisterReduction(Command):
    TYPE = "emission.reduction_registered"
    SENDERS = frozenset({"ecology_environment"})
    NEEDS_PROJECT = False
    reduction_id: str
    enterprise: str
    pollutant: str = field(metadata=choices(*reference.POLLUTANTS))
    tonnes: Decimal = field(metadata=POSITIVE)
    due_date: date
    #: The closing enterprise's district (v1.1), which keys the reduction's messages on Kafka.
    district: str = field(default=reference.CITY_CODE, metadata=choices(reference.CITY_CODE, *reference.DISTRICTS))


@dataclass(frozen=True)
class AdvanceEmission(Command):
    TYPE = "emission.advanced"
    SENDERS = frozenset({"ecology_environment"})
    reduction_id: str
    pollutant: str = field(metadata=choices(*reference.POLLUTANTS))
    tonnes: Decimal = field(metadata=POSITIVE)


@dataclass(frozen=True)
class CompleteReduction(Command):
    TYPE = "emission.reduction_completed"
    SENDERS = frozenset({"ecology_environment"})
    NEEDS_PROJECT = False
    reduction_id: str


@dataclass(frozen=True)
class ProvideData(Command):
    TYPE = "data.provided"
    SENDERS = frozenset({"big_data"})
    kind: str
    reference: str


@dataclass(frozen=True)
class ConnectUtility(Command):
    TYPE = "utility.connected"
    SENDERS = frozenset({"housing_construction", "water", "power_supply", "gas"})
    utility: str = field(metadata=choices(*reference.UTILITIES))
    reference: str | None = None


@dataclass(frozen=True)
class AssignTalent(Command):
    TYPE = "talent.assigned"
    SENDERS = frozenset({"organisation", "human_resources"})
    person: str
    role: str = field(metadata=choices(*reference.TALENT_ROLES))
    organisation: str | None = None


@dataclass(frozen=True)
class EscalateIssue(Command):
    TYPE = "issue.escalated"
    SENDERS = frozenset({ANYONE})
    issue_id: str
    title: str = field(metadata=FREE_TEXT)
    level: str = field(metadata=choices(*reference.ISSUE_LEVELS))
    assigned_to: str = field(metadata={"department": True})
    due_date: date


@dataclass(frozen=True)
class ResolveIssue(Command):
    TYPE = "issue.resolved"
    SENDERS = frozenset({"development_reform", ASSIGNEE})
    issue_id: str
    resolution: str = field(metadata=FREE_TEXT)


@dataclass(frozen=True)
class StartConstruction(Command):
    TYPE = "construction.started"
    SENDERS = frozenset({"development_reform", DISTRICT})
    date: date


@dataclass(frozen=True)
class ReportInvestment(Command):
    TYPE = "investment.reported"
    SENDERS = frozenset({"development_reform", "statistics"})
    period: str = field(metadata={"pattern": r"(199[0-9]|20[0-9][0-9]|2100)-(0[1-9]|1[0-2])"})
    completed: Decimal = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class PitchInvestment(Command):
    """A project presented to investors outside the city (招商推介), v1.1."""

    TYPE = "investment.pitched"
    SENDERS = frozenset({"cooperation_exchange", "investment_promotion"})
    event: str = field(metadata=FREE_TEXT)
    date: date
    counterpart: str | None = field(default=None, metadata=FREE_TEXT)


@dataclass(frozen=True)
class CompleteProject(Command):
    TYPE = "project.completed"
    SENDERS = frozenset({"development_reform"})
    date: date


@dataclass(frozen=True)
class CancelProject(Command):
    """Added to the contract (additive): closes a project that will not be built."""

    TYPE = "project.cancelled"
    SENDERS = frozenset({"development_reform"})
    reason: str = field(metadata=FREE_TEXT)


@dataclass(frozen=True)
class ReclaimFactor(Command):
    """Taken back by the unit that granted it, or (v1.2) by development and reform for a grant an
    open supervision case names."""

    TYPE = "factor.reclaimed"
    SENDERS = frozenset({GRANTOR, "development_reform"})
    factor: str = field(metadata=choices(*reference.FACTORS))
    grant_id: str
    reason: str = field(metadata=FREE_TEXT)


@dataclass(frozen=True)
class ApproveException(Command):
    TYPE = "exception.approved"
    SENDERS = frozenset({"development_reform"})
    rule: str = field(metadata=choices(*reference.EXCEPTION_RULES))
    reference: str
    reason: str = field(metadata=FREE_TEXT)


@dataclass(frozen=True)
class SetQuota(Command):
    TYPE = "quota.set"
    SENDERS = frozenset({"natural_resources", "development_reform", "finance"})
    NEEDS_PROJECT = False
    district: str = field(metadata=choices(*reference.DISTRICTS))
    year: int = field(metadata=YEAR)
    factor: str = field(metadata=choices(*reference.QUOTA_FACTORS))
    amount: Decimal = field(metadata=NON_NEGATIVE)


# --- v1.2: factors that settle are found, followed up and put back to work -----------------------


@dataclass(frozen=True)
class DisburseFunds(Command):
    """Money of a `funds.allocated` paid out (资金拨付/支付)."""

    TYPE = "funds.disbursed"
    SENDERS = frozenset({"finance", "development_reform"})
    grant_id: str
    amount: Decimal = field(metadata=POSITIVE)
    date: date


@dataclass(frozen=True)
class ApproveLand(Command):
    """A batch of land approved for construction (农用地转用/土地征收批复, 批次用地), to be supplied to projects."""

    TYPE = "land.approved"
    SENDERS = frozenset({"natural_resources"})
    NEEDS_PROJECT = False
    approval_id: str
    district: str = field(metadata=choices(*reference.DISTRICTS))
    area_mu: Decimal = field(metadata=POSITIVE)
    date: date


@dataclass(frozen=True)
class AmendProject(Command):
    """The project's plan changed (项目调整): from the message's day on; earlier days keep the plan then."""

    TYPE = "project.amended"
    SENDERS = frozenset({"development_reform"})
    reason: str = field(metadata=FREE_TEXT)
    planned_start: date | None = None
    planned_completion: date | None = None
    total_investment: Decimal | None = field(default=None, metadata=POSITIVE)


@dataclass(frozen=True)
class AssignSupervision(Command):
    """A supervision case handed to the department that answers for an alert (督办交办)."""

    TYPE = "supervision.assigned"
    SENDERS = frozenset({"development_reform", "supervision_office"})
    case_id: str
    rule: str
    responsible: str = field(metadata={"department": True})
    due_date: date
    demand: str = field(metadata=FREE_TEXT)
    grant_id: str | None = None


@dataclass(frozen=True)
class RespondSupervision(Command):
    """The responsible department's measures (反馈整改措施); may be sent again."""

    TYPE = "supervision.responded"
    SENDERS = frozenset({RESPONSIBLE})
    case_id: str
    measures: str = field(metadata=FREE_TEXT)
    expected_by: date


@dataclass(frozen=True)
class CloseSupervision(Command):
    """A case closed by the department that assigned it (销号)."""

    TYPE = "supervision.closed"
    SENDERS = frozenset({ASSIGNER})
    case_id: str
    outcome: str = field(metadata=choices(*reference.CASE_OUTCOMES))
    note: str = field(metadata=FREE_TEXT)


@dataclass(frozen=True)
class AllocationShare:
    """One district's share of an adopted allocation."""

    district: str = field(metadata=choices(*reference.DISTRICTS))
    amount: Decimal = field(metadata=NON_NEGATIVE)


#: Who decides each factor's allocation (要素分配决定).
ALLOCATORS: Final[dict[str, str]] = {"land": "natural_resources", "energy": "development_reform",
                                     "special_bond": "finance"}


@dataclass(frozen=True)
class AdoptAllocation(Command):
    """A binding split of a city total of land, energy or special-bond quota over the districts
    (要素分配决定, 大干大支持): each district's quota of that factor and year grows by its share."""

    TYPE = "allocation.adopted"
    SENDERS = frozenset(ALLOCATORS.values())
    NEEDS_PROJECT = False
    allocation_id: str
    year: int = field(metadata=YEAR)
    factor: str = field(metadata=choices(*ALLOCATORS))
    total: Decimal = field(metadata=POSITIVE)
    shares: tuple[AllocationShare, ...]
    basis: str = field(metadata=FREE_TEXT)
    #: The day of the ranking it follows (the advice it is compared with); default the message's day.
    as_of: date | None = None

    def senders(self) -> frozenset[str]:
        return frozenset({ALLOCATORS[self.factor]})
