"""The plan's policies on a message about a project (政策): rules that refuse it, priorities that flag it.

A rule and a priority read alike: a function of the project as it stands, the command and its
audit, which returns why the message goes against the policy (or None when it does not), listed
for its message type with its code by `@rule` or `@priority`. A rule refuses the message with its
code (`enforce`, called by the message's handler where that rule belongs among the others); a
priority is a warning the message is accepted with, stored with its events (`assess`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Final

from domain import commands as c
from domain import reference
from domain.audit import Audit, PolicyWarning
from domain.project import Project
from domain.rejections import Rejection
from domain.texts import Detail

#: A rule's or a priority's check: why the message goes against it, as a code the catalogue words, or None.
Check = Callable[[Project, Any, Audit], "Detail | None"]


@dataclass(frozen=True)
class PolicySettings:
    """What a deployment may set of the rules (`infra.settings` reads it; the unit of work carries it)."""

    #: The last year for which energy may be granted outside the district's cap (`exempt`, 防疫物资):
    #: the 十三五 assessment the seed names (2016–2020) ends with it.
    exemption_last_year: int = 2020


RULES: Final[dict[type[c.Command], list[tuple[str, Check]]]] = {}
PRIORITIES: Final[dict[type[c.Command], list[tuple[str, Check]]]] = {}

#: Warnings a message may be accepted with, each a priority of the plan.
WARNING_CODES: Final[dict[str, str]] = {
    "budget_priority": "municipal budget money goes first to projects with central or provincial money, or pushed "
                       "by the city (市级预算资金优先配套已争取到中央、省级预算内项目和重点推进项目)",
    "started_before_approval": "construction started before the approval stage (边勘察、边设计、边施工)",
    "exemption_unverified": "energy granted outside the cap to a project not recorded as epidemic supplies",
    # v1.2: decided by the handlers (they need the alerts, the advice), not by a priority here.
    "postponed_after_alert": "the planned start postponed while the project is alerted not_started",
    "supervision_waived": "a supervision case closed without rectification or reclaim (豁免销号)",
    "allocation_deviates": "an allocation departs from the advice by more than 1 % of its total for some district",
}


def rule(command: type[c.Command], code: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        RULES.setdefault(command, []).append((code, check))
        return check
    return register


def priority(command: type[c.Command], code: str) -> Callable[[Check], Check]:
    assert code in WARNING_CODES, code

    def register(check: Check) -> Check:
        PRIORITIES.setdefault(command, []).append((code, check))
        return check
    return register


def enforce(project: Project, cmd: c.Command, audit: Audit) -> None:
    """Refuse the message with the code of the first rule it breaks, saying what the rule says."""
    for code, check in RULES.get(type(cmd), ()):
        said = check(project, cmd, audit)
        if said is not None:
            assert isinstance(said, Detail) and said.code.startswith(f"{code}."), (code, said)
            raise Rejection(said.code, **said.params)


def assess(project: Project, cmd: c.Command, audit: Audit) -> tuple[PolicyWarning, ...]:
    """The warnings the message is accepted with."""
    found = ((code, check(project, cmd, audit)) for code, check in PRIORITIES.get(type(cmd), ()))
    return tuple(PolicyWarning(code, reason) for code, reason in found if reason is not None)


# --- rules ---------------------------------------------------------------------------------


@rule(c.AllocateFunds, "not_in_library")
def funds_from_their_own_library(project: Project, cmd: c.AllocateFunds, audit: Audit) -> Detail | None:
    library = reference.FUND_LIBRARIES.get(cmd.source)
    if library is None or project.in_library(library):
        return None
    return Detail("not_in_library.source", {"source": cmd.source, "library": library, "project": project.code})


#: What a special bond lacks when one evaluation alone is missing (`bond_not_eligible.evaluations`: both).
EVALUATION_MISSING: Final = {"financial": "bond_not_eligible.financial_evaluation",
                             "legal": "bond_not_eligible.legal_evaluation"}
assert set(EVALUATION_MISSING) == set(reference.EVALUATION_KINDS)


@rule(c.AllocateFunds, "bond_not_eligible")
def special_bonds_need_revenue_and_evaluations(project: Project, cmd: c.AllocateFunds, audit: Audit) -> Detail | None:
    if cmd.source != "special_bond":
        return None
    if not project.revenue_generating:
        return Detail("bond_not_eligible.no_revenue", {"project": project.code})
    missing = [k for k in reference.EVALUATION_KINDS if not project.evaluations.get(k)]
    if missing:
        # A text for each case, so that each language names the evaluations its own way.
        text = "bond_not_eligible.evaluations" if len(missing) > 1 else EVALUATION_MISSING[missing[0]]
        return Detail(text, {"project": project.code, "missing": missing})
    return None


@rule(c.AllocateFunds, "bond_not_eligible")
def general_bonds_for_projects_without_revenue(project: Project, cmd: c.AllocateFunds, audit: Audit) -> Detail | None:
    if cmd.source == "general_bond" and project.revenue_generating:
        return Detail("bond_not_eligible.revenue", {"project": project.code})
    return None


@rule(c.PitchInvestment, "not_in_library")
def pitched_from_the_attraction_library(project: Project, cmd: c.PitchInvestment, audit: Audit) -> Detail | None:
    if project.in_library("investment_attraction"):
        return None
    return Detail("not_in_library.pitch", {"project": project.code, "library": "investment_attraction"})


@rule(c.AdmitProject, "invalid")
def the_annual_library_by_year(project: Project, cmd: c.AdmitProject, audit: Audit) -> Detail | None:
    if cmd.library == "annual" and cmd.year is None:
        return Detail("invalid.annual_year", {"field": "payload.year"})
    return None


@rule(c.ReportInvestment, "invalid")
def investment_reported_after_the_month(project: Project, cmd: c.ReportInvestment, audit: Audit) -> Detail | None:
    month = audit.business_date.strftime("%Y-%m")
    if cmd.period > month:
        return Detail("invalid.period_after_the_report", {"field": "payload.period", "period": cmd.period,
                                                          "month": month})
    return None


# --- priorities ----------------------------------------------------------------------------


@priority(c.AllocateFunds, "budget_priority")
def municipal_money_follows_higher_money(project: Project, cmd: c.AllocateFunds, audit: Audit) -> Detail | None:
    if cmd.source != "municipal_budget" or project.priority != "none":
        return None
    if any(g.factor == "funds" and g.detail.get("source") in ("central_budget", "provincial_budget")
           for g in project.grants.values()):
        return None
    return Detail("budget_priority.no_higher_money", {"project": project.code})


@priority(c.StartConstruction, "started_before_approval")
def started_in_approval_or_later(project: Project, cmd: c.StartConstruction, audit: Audit) -> Detail | None:
    if project.stage in ("planning", "generation"):
        return Detail("started_before_approval.stage", {"project": project.code, "stage": project.stage})
    return None


@priority(c.GrantEnergy, "exemption_unverified")
def exemption_for_epidemic_supplies(project: Project, cmd: c.GrantEnergy, audit: Audit) -> Detail | None:
    if cmd.exempt and project.nature != reference.EPIDEMIC_SUPPLIES:
        if not project.nature:
            return Detail("exemption_unverified.no_nature", {"project": project.code,
                                                             "nature": reference.EPIDEMIC_SUPPLIES})
        return Detail("exemption_unverified.other_nature", {"project": project.code, "recorded": project.nature,
                                                            "nature": reference.EPIDEMIC_SUPPLIES})
    return None
