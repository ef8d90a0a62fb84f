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

Check = Callable[[Project, Any, Audit], "str | None"]
#: A priority's check: why the message goes against it, as a code the catalogue words, or None.
Priority = Callable[[Project, Any, Audit], "Detail | None"]


@dataclass(frozen=True)
class PolicySettings:
    """What a deployment may set of the rules (`infra.settings` reads it; the unit of work carries it)."""

    #: The last year for which energy may be granted outside the district's cap (`exempt`, 防疫物资):
    #: the 十三五 assessment the seed names (2016–2020) ends with it.
    exemption_last_year: int = 2020


RULES: Final[dict[type[c.Command], list[tuple[str, Check]]]] = {}
PRIORITIES: Final[dict[type[c.Command], list[tuple[str, Priority]]]] = {}

#: Warnings a message may be accepted with, each a priority of the plan.
WARNING_CODES: Final[dict[str, str]] = {
    "budget_priority": "municipal budget money goes first to projects with central or provincial money, or pushed "
                       "by the city (市级预算资金优先配套已争取到中央、省级预算内项目和重点推进项目)",
    "started_before_approval": "construction started before the approval stage (边勘察、边设计、边施工)",
    "exemption_unverified": "energy granted outside the cap to a project not recorded as epidemic supplies",
}


def rule(command: type[c.Command], code: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        RULES.setdefault(command, []).append((code, check))
        return check
    return register


def priority(command: type[c.Command], code: str) -> Callable[[Priority], Priority]:
    assert code in WARNING_CODES, code

    def register(check: Priority) -> Priority:
        PRIORITIES.setdefault(command, []).append((code, check))
        return check
    return register


def enforce(project: Project, cmd: c.Command, audit: Audit) -> None:
    """Refuse the message with the code of the first rule it breaks."""
    for code, check in RULES.get(type(cmd), ()):
        reason = check(project, cmd, audit)
        if reason is not None:
            raise Rejection(code, reason)


def assess(project: Project, cmd: c.Command, audit: Audit) -> tuple[PolicyWarning, ...]:
    """The warnings the message is accepted with."""
    found = ((code, check(project, cmd, audit)) for code, check in PRIORITIES.get(type(cmd), ()))
    return tuple(PolicyWarning(code, reason) for code, reason in found if reason is not None)


# --- rules ---------------------------------------------------------------------------------


@rule(c.AllocateFunds, "not_in_library")
def funds_from_their_own_library(project: Project, cmd: c.AllocateFunds, audit: Audit) -> str | None:
    library = reference.FUND_LIBRARIES.get(cmd.source)
    if library is None or project.in_library(library):
        return None
    return f"{cmd.source} funds go to projects in the {library} library; project {project.code} is not in it"


@rule(c.AllocateFunds, "bond_not_eligible")
def special_bonds_need_revenue_and_evaluations(project: Project, cmd: c.AllocateFunds, audit: Audit) -> str | None:
    if cmd.source != "special_bond":
        return None
    if not project.revenue_generating:
        return f"project {project.code} generates no revenue: special bonds need revenue (use general bonds)"
    missing = [k for k in reference.EVALUATION_KINDS if not project.evaluations.get(k)]
    if missing:
        return f"project {project.code} lacks a passed {' and '.join(missing)} evaluation for special bonds"
    return None


@rule(c.AllocateFunds, "bond_not_eligible")
def general_bonds_for_projects_without_revenue(project: Project, cmd: c.AllocateFunds, audit: Audit) -> str | None:
    if cmd.source == "general_bond" and project.revenue_generating:
        return f"project {project.code} generates revenue: general bonds are for projects without (use special bonds)"
    return None


@rule(c.PitchInvestment, "not_in_library")
def pitched_from_the_attraction_library(project: Project, cmd: c.PitchInvestment, audit: Audit) -> str | None:
    if project.in_library("investment_attraction"):
        return None
    return (f"project {project.code} is not in the investment_attraction library: "
            "赴外招商必须从在库项目中进行筛选")


@rule(c.AdmitProject, "invalid")
def the_annual_library_by_year(project: Project, cmd: c.AdmitProject, audit: Audit) -> str | None:
    if cmd.library == "annual" and cmd.year is None:
        return "payload.year: required to admit a project to the annual library"
    return None


@rule(c.ReportInvestment, "invalid")
def investment_reported_after_the_month(project: Project, cmd: c.ReportInvestment, audit: Audit) -> str | None:
    month = audit.business_date.strftime("%Y-%m")
    if cmd.period > month:
        return f"payload.period: {cmd.period} is after the month the report was made ({month})"
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
