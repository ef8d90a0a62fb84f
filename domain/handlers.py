"""Command handlers: one plain function per message type, listed in `HANDLERS`.

A handler checks every rule first and only then triggers events, so a rejection never leaves
a half-changed aggregate behind. It reaches aggregates through a `UnitOfWork` (what one batch of
messages reads and changes), which `service.unit_of_work` implements over the event store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Callable, Final, Iterable, Protocol

from domain import commands as c
from domain import supervision
from domain.allocation import Allocation
from domain.approval import LandApproval
from domain.audit import Audit, PolicyWarning
from domain.casebook import CaseNumber
from domain.envelope import Envelope
from domain.facts import project_facts
from domain.policy import PolicySettings, assess, enforce
from domain.project import Project
from domain.quota import QuotaPool, quota_drawn
from domain.reduction import EmissionReduction
from domain.reference import ISSUE_LEVELS, STAGES, ProjectCode
from domain.rejections import Rejection
from domain.senders import could_send, require_may_send
from domain.texts import Detail


class UnitOfWork(Protocol):
    """The aggregates one message may read and change; new ones are added with `add`. It carries the
    deployment's settings of the rules, so that the handlers stay functions of what they are given."""

    @property
    def policy(self) -> PolicySettings: ...

    def find_project(self, code: str) -> Project | None: ...

    def find_pool(self, district: str, year: int, factor: str) -> QuotaPool | None: ...

    def find_reduction(self, reduction_id: str) -> EmissionReduction | None: ...

    @property
    def thresholds(self) -> supervision.Thresholds: ...

    def find_approval(self, approval_id: str) -> LandApproval | None: ...

    def find_allocation(self, allocation_id: str) -> Allocation | None: ...

    def find_case(self, case_id: str) -> CaseNumber | None: ...

    def advice(self, year: int, factor: str, total: Decimal, as_of: date) -> list[tuple[str, Decimal]] | None:
        """The allocation advice of the read side ([(district, share)]), or None when it cannot say (v1.2)."""
        ...

    def add(self, aggregate: Project | QuotaPool | EmissionReduction | LandApproval | Allocation | CaseNumber) -> None:
        ...


def project_of(uow: UnitOfWork, envelope: Envelope) -> Project:
    assert envelope.project_code is not None
    project = uow.find_project(envelope.project_code)
    if project is None:
        raise Rejection("unknown_project.not_registered", project=envelope.project_code)
    return project


def require_sender(envelope: Envelope, project: Project | None = None, **roles: str | None) -> None:
    if project is not None:
        roles = {"owner": project.department, "district": project.district, **roles}
    require_may_send(envelope.command, envelope.audit.department, **roles)


def open_project(uow: UnitOfWork, envelope: Envelope) -> Project:
    """The project a message is about, from a sender who may send it, not completed or cancelled."""
    project = project_of(uow, envelope)
    require_sender(envelope, project)
    project.check_open()
    return project


def project_receiving_a_factor(uow: UnitOfWork, envelope: Envelope) -> Project:
    """The same, and admitted to a library: only such a project may receive a factor (先入库,后保障)."""
    project = project_of(uow, envelope)
    require_sender(envelope, project)
    project.check_may_receive_factor()
    return project


def reduction_of(uow: UnitOfWork, reduction_id: str) -> EmissionReduction:
    reduction = uow.find_reduction(reduction_id)
    if reduction is None:
        raise Rejection("unknown_reference.no_reduction", reduction=reduction_id)
    return reduction


# --- Handlers ------------------------------------------------------------------------------


def register_project(cmd: c.RegisterProject, uow: UnitOfWork, envelope: Envelope) -> None:
    assert envelope.project_code is not None
    # A district portal registers only codes of its own area; nobody registers a code of one
    # area for a project of another (it would lock that district out of its own code).
    area = ProjectCode(envelope.project_code).area
    require_sender(envelope, district=area)
    if area != cmd.district:
        raise Rejection("invalid.not_the_area", field="payload.district", district=cmd.district, area=area)
    if uow.find_project(envelope.project_code) is not None:
        raise Rejection("already_registered.project", project=envelope.project_code)
    if cmd.planned_completion < cmd.planned_start:
        raise Rejection("invalid.before", field="payload.planned_completion", other="planned_start")
    uow.add(
        Project(
            code=envelope.project_code,
            name=cmd.name,
            district=cmd.district,
            sector=cmd.sector,
            department=cmd.department,
            owner=cmd.owner,
            total_investment=cmd.total_investment,
            planned_start=cmd.planned_start,
            planned_completion=cmd.planned_completion,
            revenue_generating=cmd.revenue_generating,
            priority=cmd.priority,
            nature=cmd.nature,
            audit=envelope.audit,
        )
    )


def set_plan(cmd: c.SetPlan, uow: UnitOfWork, envelope: Envelope) -> None:
    project = open_project(uow, envelope)
    project.set_plan(cmd.year, cmd.planned_investment, envelope.audit)


def admit_project(cmd: c.AdmitProject, uow: UnitOfWork, envelope: Envelope) -> None:
    project = open_project(uow, envelope)
    enforce(project, cmd, envelope.audit)
    # The annual library (年度计划) admits a project again for each year.
    if project.in_library(cmd.library, cmd.year if cmd.library == "annual" else None):
        if cmd.library == "annual" and cmd.year:
            raise Rejection("invalid_state.in_the_library_for", project=project.code, library=cmd.library, year=cmd.year)
        raise Rejection("invalid_state.in_the_library", project=project.code, library=cmd.library)
    project.admit(cmd.library, cmd.year, cmd.opinion, envelope.audit)


def release_project(cmd: c.ReleaseProject, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_of(uow, envelope)
    require_sender(envelope, project)
    if not project.in_library(cmd.library):
        raise Rejection("invalid_state.not_in_the_library", project=project.code, library=cmd.library)
    project.release(cmd.library, cmd.reason, envelope.audit)


def advance_stage(cmd: c.AdvanceStage, uow: UnitOfWork, envelope: Envelope) -> None:
    project = open_project(uow, envelope)
    expected = STAGES[STAGES.index(project.stage) + 1] if project.stage != STAGES[-1] else None
    if cmd.stage != expected:
        if expected is None:
            raise Rejection("stage_order.last_stage", project=project.code, stage=project.stage, asked=cmd.stage)
        raise Rejection("stage_order.next_stage", project=project.code, stage=project.stage, expected=expected,
                        asked=cmd.stage)
    project.advance_stage(cmd.stage, cmd.reason, envelope.audit)


def evaluate_bond(cmd: c.EvaluateBond, uow: UnitOfWork, envelope: Envelope) -> None:
    project = open_project(uow, envelope)
    project.evaluate_bond(cmd.kind, cmd.evaluator, cmd.passed, envelope.audit)


def approve_exception(cmd: c.ApproveException, uow: UnitOfWork, envelope: Envelope) -> None:
    project = open_project(uow, envelope)
    if cmd.reference in project.exceptions:
        raise Rejection("invalid_state.exception_recorded", exception=cmd.reference)
    project.approve_exception(cmd.rule, cmd.reference, cmd.reason, envelope.audit)


def allocate_funds(cmd: c.AllocateFunds, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_receiving_a_factor(uow, envelope)
    enforce(project, cmd, envelope.audit)  # its library, and bonds for revenue or for none
    # Special bonds draw on the district's bond quota of the year where the province handed one down (v1.2).
    pool = (uow.find_pool(project.district, envelope.audit.business_date.year, "special_bond")
            if cmd.source == "special_bond" else None)
    if pool is not None:
        if cmd.amount > pool.remaining:
            raise Rejection("quota_exceeded.bond_quota", amount=cmd.amount, district=project.district,
                            year=pool.year, remaining=pool.remaining, quota=pool.quota)
        pool.draw(envelope.audit.message_id, project.code, cmd.amount, envelope.audit)
    project.allocate_funds(cmd.source, cmd.amount, cmd.document, envelope.audit)


def supply_land(cmd: c.SupplyLand, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_receiving_a_factor(uow, envelope)
    year = envelope.audit.business_date.year
    if not project.in_library("annual", year):
        if cmd.exception is None:
            raise Rejection("not_in_annual_plan.not_in_the_annual_library", project=project.code, year=year)
        if project.exceptions.get(cmd.exception) != "not_in_annual_plan":
            raise Rejection("not_in_annual_plan.no_exception", project=project.code, exception=cmd.exception)
    approval = approval_drawn_on(uow, project, cmd, envelope) if cmd.approval_id is not None else None
    # Land is supplied only within the year's land plan, once approved (年度供地计划报市政府批准后开展供地工作).
    pool = uow.find_pool(project.district, year, "land")
    if pool is None:
        raise Rejection("quota_exceeded.no_quota", factor="land", district=project.district, year=year)
    pool.check_draw(cmd.area_mu)
    pool.draw(envelope.audit.message_id, project.code, cmd.area_mu, envelope.audit)
    if approval is not None:
        approval.draw(envelope.audit.message_id, project.code, cmd.area_mu, envelope.audit)
    project.supply_land(cmd.parcel, cmd.area_mu, cmd.method, cmd.exception, envelope.audit, cmd.approval_id, cmd.start_by)


def approval_drawn_on(uow: UnitOfWork, project: Project, cmd: c.SupplyLand, envelope: Envelope) -> LandApproval:
    """The batch approval a supply draws on (v1.2): of the project's district, approved by the supply's
    day, with the area left unsupplied."""
    assert cmd.approval_id is not None
    approval = uow.find_approval(cmd.approval_id)
    if approval is None:
        raise Rejection("unknown_reference.no_approval", approval=cmd.approval_id)
    if approval.district != project.district:
        raise Rejection("invalid.approval_elsewhere", field="payload.approval_id", approval=cmd.approval_id,
                        district=approval.district, project=project.code, project_district=project.district)
    if envelope.audit.business_date < approval.approved_on:
        raise Rejection("invalid.before_the_approval", field="occurred_at", approval=cmd.approval_id,
                        approved_on=approval.approved_on.isoformat())
    if cmd.area_mu > approval.unsupplied:
        raise Rejection("quota_exceeded.approval_unsupplied", approval=cmd.approval_id, amount=cmd.area_mu,
                        unsupplied=approval.unsupplied, approved=approval.area_mu)
    return approval


def grant_energy(cmd: c.GrantEnergy, uow: UnitOfWork, envelope: Envelope) -> None:
    last = uow.policy.exemption_last_year
    if cmd.exempt and cmd.year > last:  # the epidemic exemption was for the 十三五 assessment only
        raise Rejection("invalid.exempt_after", field="payload.exempt", last=last, year=cmd.year)
    project = project_receiving_a_factor(uow, envelope)
    if not cmd.exempt:
        pool = uow.find_pool(project.district, cmd.year, "energy")
        if pool is None:
            raise Rejection("quota_exceeded.no_quota", factor="energy", district=project.district, year=cmd.year)
        pool.check_draw(cmd.tce)
        pool.draw(envelope.audit.message_id, project.code, cmd.tce, envelope.audit)
    project.grant_energy(cmd.tce, cmd.year, cmd.exempt, envelope.audit)


def register_reduction(cmd: c.RegisterReduction, uow: UnitOfWork, envelope: Envelope) -> None:
    require_sender(envelope)
    if uow.find_reduction(cmd.reduction_id) is not None:
        raise Rejection("invalid_state.reduction_registered", reduction=cmd.reduction_id)
    uow.add(
        EmissionReduction(
            reduction_id=cmd.reduction_id,
            enterprise=cmd.enterprise,
            pollutant=cmd.pollutant,
            tonnes=cmd.tonnes,
            due_date=cmd.due_date,
            audit=envelope.audit,
            district=cmd.district,
        )
    )


def advance_emission(cmd: c.AdvanceEmission, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_receiving_a_factor(uow, envelope)
    reduction = reduction_of(uow, cmd.reduction_id)
    reduction.check_advance(cmd.pollutant, cmd.tonnes)
    reduction.advance(envelope.audit.message_id, project.code, cmd.tonnes, envelope.audit)
    project.advance_emission(cmd.reduction_id, cmd.pollutant, cmd.tonnes, envelope.audit)


def complete_reduction(cmd: c.CompleteReduction, uow: UnitOfWork, envelope: Envelope) -> None:
    require_sender(envelope)
    reduction = reduction_of(uow, cmd.reduction_id)
    if reduction.completed_on is not None:
        raise Rejection("invalid_state.reduction_completed", reduction=cmd.reduction_id)
    reduction.complete(envelope.audit)


def provide_data(cmd: c.ProvideData, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_receiving_a_factor(uow, envelope)
    project.provide_data(cmd.kind, cmd.reference, envelope.audit)


def connect_utility(cmd: c.ConnectUtility, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_receiving_a_factor(uow, envelope)
    project.connect_utility(cmd.utility, cmd.reference, envelope.audit)


def assign_talent(cmd: c.AssignTalent, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_receiving_a_factor(uow, envelope)
    project.assign_talent(cmd.person, cmd.role, cmd.organisation, envelope.audit)


def escalate_issue(cmd: c.EscalateIssue, uow: UnitOfWork, envelope: Envelope) -> None:
    # Coordination (重大协调服务) is a factor: admitted projects only.
    project = project_receiving_a_factor(uow, envelope)
    earlier = project.issues.get(cmd.issue_id)
    if earlier is not None:  # escalated again (分级调度): only while open, and only upwards
        if earlier["resolved_on"] is not None:
            raise Rejection("invalid_state.issue_resolved", issue=cmd.issue_id)
        if ISSUE_LEVELS.index(cmd.level) <= ISSUE_LEVELS.index(earlier["level"]):
            raise Rejection("invalid_state.issue_level", issue=cmd.issue_id, level=earlier["level"], asked=cmd.level)
    project.escalate_issue(cmd.issue_id, cmd.title, cmd.level, cmd.assigned_to, cmd.due_date, envelope.audit)


def resolve_issue(cmd: c.ResolveIssue, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_of(uow, envelope)
    issue = project.issues.get(cmd.issue_id)
    if issue is None:
        raise Rejection("unknown_reference.no_issue", project=project.code, issue=cmd.issue_id)
    require_sender(envelope, project, assignee=issue["assigned_to"])
    if issue["resolved_on"] is not None:
        raise Rejection("invalid_state.issue_resolved", issue=cmd.issue_id)
    project.resolve_issue(cmd.issue_id, cmd.resolution, envelope.audit)


def not_after_report(day: date, envelope: Envelope, field: str = "payload.date") -> None:
    # A date in a payload says when it happened; it cannot be later than the report of it.
    if day > envelope.audit.business_date:
        raise Rejection("invalid.after_the_report", field=field, date=day.isoformat(),
                        reported=envelope.audit.business_date.isoformat())


def start_construction(cmd: c.StartConstruction, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_of(uow, envelope)
    require_sender(envelope, project)
    not_after_report(cmd.date, envelope)
    project.check_open()
    if project.started_on is not None:
        raise Rejection("stage_order.already_started", project=project.code, started=project.started_on.isoformat())
    project.start_construction(cmd.date, envelope.audit)


def report_investment(cmd: c.ReportInvestment, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_of(uow, envelope)
    require_sender(envelope, project)
    enforce(project, cmd, envelope.audit)
    if project.cancelled_on is not None:
        raise Rejection("closed_project.cancelled", project=project.code)
    project.report_investment(cmd.period, cmd.completed, envelope.audit)


def pitch_investment(cmd: c.PitchInvestment, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_of(uow, envelope)
    require_sender(envelope, project)
    not_after_report(cmd.date, envelope)
    project.check_open()
    enforce(project, cmd, envelope.audit)  # pitched only from the investment-attraction library
    project.pitch(cmd.event, cmd.date, cmd.counterpart, envelope.audit)


def complete_project(cmd: c.CompleteProject, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_of(uow, envelope)
    require_sender(envelope, project)
    not_after_report(cmd.date, envelope)
    project.check_open()
    if STAGES.index(project.stage) < STAGES.index("construction"):
        raise Rejection("stage_order.completes_from_construction", project=project.code, stage=project.stage)
    if project.started_on is None:
        raise Rejection("stage_order.not_started", project=project.code)
    if cmd.date < project.started_on:
        raise Rejection("stage_order.completion_before_start", date=cmd.date.isoformat(),
                        started=project.started_on.isoformat())
    project.complete(cmd.date, envelope.audit)


def cancel_project(cmd: c.CancelProject, uow: UnitOfWork, envelope: Envelope) -> None:
    project = open_project(uow, envelope)
    project.cancel(cmd.reason, envelope.audit)


def reclaim_factor(cmd: c.ReclaimFactor, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_of(uow, envelope)
    grant = project.live_grant(cmd.grant_id, cmd.factor)
    department = envelope.audit.department
    # Development and reform takes back another unit's grant only when a supervision case names it (v1.2).
    if department == "development_reform" and grant.department != department and not any(
            case["closed_on"] is None and case["grant_id"] in (None, cmd.grant_id) for case in project.cases.values()):
        raise Rejection("forbidden.no_open_case", department=department, project=project.code, grant=cmd.grant_id)
    require_sender(envelope, project, grantor=grant.department)
    pool_factor = quota_drawn(grant.factor, grant.detail)
    if pool_factor is not None:  # what is taken back goes back to the district's pool it came from (v1.2)
        year = grant.detail.get("year", grant.granted_on.year)
        pool = uow.find_pool(project.district, year, pool_factor)
        if pool is not None and cmd.grant_id in pool.drawn:
            pool.give_back(cmd.grant_id, cmd.reason, envelope.audit)
    if cmd.factor == "emission":
        reduction = reduction_of(uow, grant.detail["reduction_id"])
        reduction.give_back(cmd.grant_id, cmd.reason, envelope.audit)
    project.reclaim(cmd.factor, cmd.grant_id, cmd.reason, envelope.audit)


def set_quota(cmd: c.SetQuota, uow: UnitOfWork, envelope: Envelope) -> None:
    # Land quotas come from natural resources, energy quotas from development and reform, special-bond
    # quotas (handed down by the province) from finance: the units that also allocate them.
    owner = c.ALLOCATORS[cmd.factor]
    if envelope.audit.department != owner:
        raise Rejection("forbidden.quota", department=envelope.audit.department, factor=cmd.factor)
    pool = uow.find_pool(cmd.district, cmd.year, cmd.factor)
    if pool is None:
        uow.add(QuotaPool(district=cmd.district, year=cmd.year, factor=cmd.factor, amount=cmd.amount, audit=envelope.audit))
    else:
        pool.set_quota(cmd.amount, envelope.audit)


# --- v1.2: factors that settle are found, followed up and put back to work -----------------------

#: Handlers that decide warnings of their own (`handle` adds them to the policy's): those need the
#: alerts or the advice, which a `domain.policy` priority does not see.
Warnings = tuple[PolicyWarning, ...]


def with_warnings(envelope: Envelope, warnings: Iterable[PolicyWarning]) -> Audit:
    """The audit the message's events carry: with the warnings it is accepted with, the policy's and the handler's."""
    return replace(envelope.audit, warnings=(*envelope.audit.warnings, *warnings))


def facts_of(uow: UnitOfWork, project: Project) -> supervision.ProjectFacts:
    """What supervision knows of the project now, with the reductions its emission grants drew on."""
    reductions = {}
    for grant in project.grants.values():
        reduction_id = grant.detail.get("reduction_id")
        reduction = uow.find_reduction(reduction_id) if reduction_id else None
        if reduction is not None:
            reductions[reduction_id] = supervision.ReductionFact(reduction_id, reduction.due_date, reduction.completed_on)
    return project_facts(project, reductions)


def alerted(uow: UnitOfWork, project: Project, day: date, rule: str, grant_id: str | None) -> bool:
    """Whether the project has the alert `rule` (about that grant, where one is named) on `day`."""
    return any(alert.rule == rule and (grant_id is None or alert.grant_id == grant_id)
               for alert in supervision.evaluate(facts_of(uow, project), day, uow.thresholds))


def disburse_funds(cmd: c.DisburseFunds, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_of(uow, envelope)
    require_sender(envelope, project)
    grant = project.live_grant(cmd.grant_id, "funds")
    not_after_report(cmd.date, envelope)
    if cmd.date < grant.granted_on:
        raise Rejection("invalid.before_the_grant", field="payload.date", date=cmd.date.isoformat(),
                        grant=cmd.grant_id, granted_on=grant.granted_on.isoformat())
    allocated = grant.quantity or Decimal(0)
    disbursed = project.disbursed(cmd.grant_id)
    if disbursed + cmd.amount > allocated:  # 拨付不超过下达
        raise Rejection("invalid.beyond_allocated", field="payload.amount", amount=cmd.amount, grant=cmd.grant_id,
                        allocated=allocated, disbursed=disbursed)
    project.disburse_funds(cmd.grant_id, cmd.amount, cmd.date, envelope.audit)


def approve_land(cmd: c.ApproveLand, uow: UnitOfWork, envelope: Envelope) -> None:
    require_sender(envelope)
    not_after_report(cmd.date, envelope)
    if uow.find_approval(cmd.approval_id) is not None:
        raise Rejection("invalid_state.approval_recorded", approval=cmd.approval_id)
    uow.add(LandApproval(approval_id=cmd.approval_id, district=cmd.district, area_mu=cmd.area_mu, date=cmd.date,
                         audit=envelope.audit))


def amend_project(cmd: c.AmendProject, uow: UnitOfWork, envelope: Envelope) -> Warnings:
    project = open_project(uow, envelope)
    if cmd.planned_start is None and cmd.planned_completion is None and cmd.total_investment is None:
        raise Rejection("invalid.nothing_amended", field="payload")
    start = cmd.planned_start or project.planned_start
    if (cmd.planned_completion or project.planned_completion) < start:
        raise Rejection("invalid.before", field="payload.planned_completion" if cmd.planned_completion else
                        "payload.planned_start", other="planned_start" if cmd.planned_completion else
                        "planned_completion")
    warnings: Warnings = ()
    day = envelope.audit.business_date
    # Postponing the start of a project alerted not_started that day would make the alert vanish quietly.
    if cmd.planned_start is not None and cmd.planned_start > project.planned_start and alerted(
            uow, project, day, "not_started", None):
        warnings = (PolicyWarning("postponed_after_alert", Detail("postponed_after_alert.not_started", {
            "project": project.code, "planned_start": project.planned_start.isoformat(),
            "postponed_to": cmd.planned_start.isoformat(), "day": day.isoformat()})),)
    project.amend(cmd.planned_start, cmd.planned_completion, cmd.total_investment, cmd.reason,
                  with_warnings(envelope, warnings))
    return warnings


def assign_supervision(cmd: c.AssignSupervision, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_of(uow, envelope)
    require_sender(envelope, project)
    if uow.find_case(cmd.case_id) is not None:  # a case number is unique in the city
        raise Rejection("invalid_state.case_number_taken", case=cmd.case_id)
    if cmd.rule not in supervision.RULES:
        raise Rejection("invalid.not_a_choice", field="payload.rule", value=cmd.rule, choices=list(supervision.RULES))
    day = envelope.audit.business_date
    if cmd.due_date < day:
        raise Rejection("invalid.due_before_assigned", field="payload.due_date", due_date=cmd.due_date.isoformat(),
                        day=day.isoformat())
    if cmd.grant_id is not None and cmd.grant_id not in project.grants:
        raise Rejection("unknown_reference.no_grant_of_project", project=project.code, grant=cmd.grant_id)
    if not alerted(uow, project, day, cmd.rule, cmd.grant_id):
        if cmd.grant_id is None:
            raise Rejection("not_alerted.rule", project=project.code, rule=cmd.rule, day=day.isoformat())
        raise Rejection("not_alerted.rule_for_grant", project=project.code, rule=cmd.rule, grant=cmd.grant_id,
                        day=day.isoformat())
    earlier = project.open_case(cmd.rule, cmd.grant_id)
    if earlier is not None:
        raise Rejection("invalid_state.case_open", project=project.code, rule=cmd.rule, case=earlier["case_id"])
    uow.add(CaseNumber(case_id=cmd.case_id, project_code=project.code, audit=envelope.audit))
    project.assign_supervision(cmd.case_id, cmd.rule, cmd.grant_id, cmd.responsible, cmd.due_date, cmd.demand,
                               envelope.audit)


def case_of(uow: UnitOfWork, envelope: Envelope, case_id: str) -> tuple[Project, dict[str, Any]]:
    """The project and the case a case message names: the case number must be of the envelope's project."""
    number = uow.find_case(case_id)
    if number is None or number.project_code != envelope.project_code:
        raise Rejection("unknown_reference.no_case", project=envelope.project_code, case=case_id)
    project = project_of(uow, envelope)
    return project, project.cases[case_id]


#: The department each sender's role of a case is bound to (`domain.senders`): who answers, who closes.
CASE_ROLES: Final = {"responsible": "responsible", "assigner": "assigned_by"}


def open_case_of(uow: UnitOfWork, envelope: Envelope, case_id: str, role: str) -> tuple[Project, dict[str, Any]]:
    """The same, from the department the case binds to `role`, still open, and on or after its day."""
    project, case = case_of(uow, envelope, case_id)
    require_sender(envelope, project, **{role: case[CASE_ROLES[role]]})
    if case["closed_on"] is not None:
        raise Rejection("invalid_state.case_closed", case=case_id, closed_on=case["closed_on"].isoformat())
    if envelope.audit.business_date < case["assigned_on"]:
        raise Rejection("invalid.before_the_case", field="occurred_at", case=case_id,
                        assigned_on=case["assigned_on"].isoformat())
    return project, case


def respond_supervision(cmd: c.RespondSupervision, uow: UnitOfWork, envelope: Envelope) -> None:
    project, case = open_case_of(uow, envelope, cmd.case_id, "responsible")
    if cmd.expected_by < case["assigned_on"]:
        raise Rejection("invalid.before_the_case", field="payload.expected_by", case=cmd.case_id,
                        assigned_on=case["assigned_on"].isoformat())
    project.respond_supervision(cmd.case_id, cmd.measures, cmd.expected_by, envelope.audit)


def close_supervision(cmd: c.CloseSupervision, uow: UnitOfWork, envelope: Envelope) -> Warnings:
    project, case = open_case_of(uow, envelope, cmd.case_id, "assigner")
    day = envelope.audit.business_date
    warnings: Warnings = ()
    if cmd.outcome == "rectified" and alerted(uow, project, day, case["rule"], case["grant_id"]):
        raise Rejection("not_cleared.still_alerted", case=cmd.case_id, rule=case["rule"], day=day.isoformat())
    if cmd.outcome == "reclaimed":
        grant_id = case["grant_id"]
        named = [project.grants[grant_id]] if grant_id in project.grants else [] if grant_id else project.grants.values()
        if not any(g.reclaimed_on is not None and g.reclaimed_on >= case["assigned_on"] for g in named):
            if grant_id:
                raise Rejection("not_cleared.grant_not_reclaimed", case=cmd.case_id, grant=grant_id,
                                assigned_on=case["assigned_on"].isoformat())
            raise Rejection("not_cleared.nothing_reclaimed", case=cmd.case_id, project=project.code,
                            assigned_on=case["assigned_on"].isoformat())
    if cmd.outcome == "waived":
        warnings = (PolicyWarning("supervision_waived", Detail("supervision_waived.waived", {
            "case": cmd.case_id, "rule": case["rule"], "project": project.code})),)
    project.close_supervision(cmd.case_id, cmd.outcome, cmd.note, with_warnings(envelope, warnings))
    return warnings


#: How far a share may stand from the advice before the allocation is flagged: 1 % of the total.
DEVIATION_TOLERANCE: Final = Decimal("0.01")


def adopt_allocation(cmd: c.AdoptAllocation, uow: UnitOfWork, envelope: Envelope) -> Warnings:
    require_sender(envelope)  # the unit that allocates that factor
    if uow.find_allocation(cmd.allocation_id) is not None:
        raise Rejection("invalid_state.allocation_adopted", allocation=cmd.allocation_id)
    seen: set[str] = set()
    for n, share in enumerate(cmd.shares):
        if share.district in seen:
            raise Rejection("invalid.duplicate_district", field=f"payload.shares[{n}].district", district=share.district)
        seen.add(share.district)
    shared = sum((share.amount for share in cmd.shares), Decimal(0))
    if shared != cmd.total:
        raise Rejection("invalid.shares_sum", field="payload.shares", sum=shared, total=cmd.total)
    as_of = cmd.as_of or envelope.audit.business_date
    not_after_report(as_of, envelope, "payload.as_of")
    advice = uow.advice(cmd.year, cmd.factor, cmd.total, as_of)
    warnings: Warnings = ()
    kept: list[dict[str, Any]] | None = None
    if advice is not None:
        deviation = deviation_from(cmd.shares, advice)
        if deviation is not None and deviation[3] > cmd.total * DEVIATION_TOLERANCE:
            district, share, advised, gap = deviation
            kept = [{"district": d, "share": a} for d, a in advice]
            warnings = (PolicyWarning("allocation_deviates", Detail("allocation_deviates.from_advice", {
                "allocation": cmd.allocation_id, "district": district, "share": str(share), "advised": str(advised),
                "tolerance": str(cmd.total * DEVIATION_TOLERANCE)})),)
    audit = with_warnings(envelope, warnings)
    uow.add(Allocation(allocation_id=cmd.allocation_id, year=cmd.year, factor=cmd.factor, total=cmd.total,
                       shares=[{"district": s.district, "amount": s.amount} for s in cmd.shares], as_of=as_of,
                       basis=cmd.basis, advice=kept, audit=audit))
    for share in cmd.shares:  # each district's quota grows by its share, as a quota.set of the new amount
        if share.amount == 0:
            continue
        pool = uow.find_pool(share.district, cmd.year, cmd.factor)
        if pool is None:
            uow.add(QuotaPool(district=share.district, year=cmd.year, factor=cmd.factor, amount=share.amount,
                              audit=audit))
        else:
            pool.set_quota(pool.quota + share.amount, audit)
    return warnings


def deviation_from(shares: Iterable[c.AllocationShare], advice: Iterable[tuple[str, Decimal]]
                   ) -> tuple[str, Decimal, Decimal, Decimal] | None:
    """The district whose share stands farthest from the advice: (district, share, advised, |difference|);
    a district in only one of them has 0 in the other. None when both are empty."""
    adopted = {share.district: share.amount for share in shares}
    advised = dict(advice)
    gaps = [(d, adopted.get(d, Decimal(0)), advised.get(d, Decimal(0))) for d in sorted({*adopted, *advised})]
    if not gaps:
        return None
    district, share, advised_share = max(gaps, key=lambda gap: abs(gap[1] - gap[2]))
    return district, share, advised_share, abs(share - advised_share)


Handler = Callable[..., "Warnings | None"]

#: The one table from message type to handler.
HANDLERS: Final[dict[type[c.Command], Handler]] = {
    c.RegisterProject: register_project,
    c.SetPlan: set_plan,
    c.AdmitProject: admit_project,
    c.ReleaseProject: release_project,
    c.AdvanceStage: advance_stage,
    c.AllocateFunds: allocate_funds,
    c.EvaluateBond: evaluate_bond,
    c.SupplyLand: supply_land,
    c.GrantEnergy: grant_energy,
    c.RegisterReduction: register_reduction,
    c.AdvanceEmission: advance_emission,
    c.CompleteReduction: complete_reduction,
    c.ProvideData: provide_data,
    c.ConnectUtility: connect_utility,
    c.AssignTalent: assign_talent,
    c.EscalateIssue: escalate_issue,
    c.ResolveIssue: resolve_issue,
    c.StartConstruction: start_construction,
    c.ReportInvestment: report_investment,
    c.PitchInvestment: pitch_investment,
    c.CompleteProject: complete_project,
    c.CancelProject: cancel_project,
    c.ReclaimFactor: reclaim_factor,
    c.ApproveException: approve_exception,
    c.SetQuota: set_quota,
    c.DisburseFunds: disburse_funds,
    c.ApproveLand: approve_land,
    c.AmendProject: amend_project,
    c.AssignSupervision: assign_supervision,
    c.RespondSupervision: respond_supervision,
    c.CloseSupervision: close_supervision,
    c.AdoptAllocation: adopt_allocation,
}


def handle(envelope: Envelope, uow: UnitOfWork) -> tuple[PolicyWarning, ...]:
    """Run the envelope's command; raises `Rejection` when a rule refuses it, returns the warnings it is
    accepted with (`domain.policy` priorities, then those its handler decides), which its events carry
    in their audit."""
    # A sender that could never send this type is refused before anything is looked up, so
    # the answer reveals nothing about which projects exist.
    if not could_send(type(envelope.command), envelope.audit.department):
        raise Rejection("forbidden.type", department=envelope.audit.department, type=envelope.audit.message_type)
    project = uow.find_project(envelope.project_code) if envelope.project_code else None
    warnings = assess(project, envelope.command, envelope.audit) if project is not None else ()
    if warnings:
        envelope = replace(envelope, audit=replace(envelope.audit, warnings=warnings))
    decided = HANDLERS[type(envelope.command)](envelope.command, uow, envelope)
    return (*warnings, *(decided or ()))

