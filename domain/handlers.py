"""Command handlers: one plain function per message type, listed in `HANDLERS`.

A handler checks every rule first and only then triggers events, so a rejection never leaves
a half-changed aggregate behind. It reaches aggregates through a `UnitOfWork` (what one batch of
messages reads and changes), which `service.unit_of_work` implements over the event store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Callable, Final, Protocol

from domain import commands as c
from domain.audit import PolicyWarning
from domain.envelope import Envelope
from domain.policy import PolicySettings, assess, enforce
from domain.project import Project
from domain.quota import QuotaPool
from domain.reduction import EmissionReduction
from domain.reference import ISSUE_LEVELS, STAGES, ProjectCode
from domain.rejections import Rejection
from domain.senders import could_send, require_may_send


class UnitOfWork(Protocol):
    """The aggregates one message may read and change; new ones are added with `add`. It carries the
    deployment's settings of the rules, so that the handlers stay functions of what they are given."""

    @property
    def policy(self) -> PolicySettings: ...

    def find_project(self, code: str) -> Project | None: ...

    def find_pool(self, district: str, year: int, factor: str) -> QuotaPool | None: ...

    def find_reduction(self, reduction_id: str) -> EmissionReduction | None: ...

    def add(self, aggregate: Project | QuotaPool | EmissionReduction) -> None: ...


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
    project.allocate_funds(cmd.source, cmd.amount, cmd.document, envelope.audit)


def supply_land(cmd: c.SupplyLand, uow: UnitOfWork, envelope: Envelope) -> None:
    project = project_receiving_a_factor(uow, envelope)
    year = envelope.audit.business_date.year
    if not project.in_library("annual", year):
        if cmd.exception is None:
            raise Rejection("not_in_annual_plan.not_in_the_annual_library", project=project.code, year=year)
        if project.exceptions.get(cmd.exception) != "not_in_annual_plan":
            raise Rejection("not_in_annual_plan.no_exception", project=project.code, exception=cmd.exception)
    # Land is supplied only within the year's land plan, once approved (年度供地计划报市政府批准后开展供地工作).
    pool = uow.find_pool(project.district, year, "land")
    if pool is None:
        raise Rejection("quota_exceeded.no_quota", factor="land", district=project.district, year=year)
    pool.check_draw(cmd.area_mu)
    pool.draw(envelope.audit.message_id, project.code, cmd.area_mu, envelope.audit)
    project.supply_land(cmd.parcel, cmd.area_mu, cmd.method, cmd.exception, envelope.audit, cmd.approval_id, cmd.start_by)


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


def not_after_report(day: date, envelope: Envelope) -> None:
    # A date in a payload says when it happened; it cannot be later than the report of it.
    if day > envelope.audit.business_date:
        raise Rejection("invalid.after_the_report", field="payload.date", date=day.isoformat(),
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
    require_sender(envelope, project, grantor=grant.department)
    if cmd.factor in ("land", "energy") and not grant.detail.get("exempt"):
        year = grant.detail.get("year", grant.granted_on.year)
        pool = uow.find_pool(project.district, year, cmd.factor)
        if pool is not None and cmd.grant_id in pool.drawn:
            pool.give_back(cmd.grant_id, cmd.reason, envelope.audit)
    if cmd.factor == "emission":
        reduction = reduction_of(uow, grant.detail["reduction_id"])
        reduction.give_back(cmd.grant_id, cmd.reason, envelope.audit)
    project.reclaim(cmd.factor, cmd.grant_id, cmd.reason, envelope.audit)


def set_quota(cmd: c.SetQuota, uow: UnitOfWork, envelope: Envelope) -> None:
    # Land quotas come from natural resources, energy quotas from development and reform.
    owner = {"land": "natural_resources", "energy": "development_reform"}[cmd.factor]
    if envelope.audit.department != owner:
        raise Rejection("forbidden.quota", department=envelope.audit.department, factor=cmd.factor)
    pool = uow.find_pool(cmd.district, cmd.year, cmd.factor)
    if pool is None:
        uow.add(QuotaPool(district=cmd.district, year=cmd.year, factor=cmd.factor, amount=cmd.amount, audit=envelope.audit))
    else:
        pool.set_quota(cmd.amount, envelope.audit)


Handler = Callable[..., None]

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
}


def handle(envelope: Envelope, uow: UnitOfWork) -> tuple[PolicyWarning, ...]:
    """Run the envelope's command; raises `Rejection` when a rule refuses it, returns the warnings
    (`domain.policy` priorities) it is accepted with, which its events carry in their audit."""
    # A sender that could never send this type is refused before anything is looked up, so
    # the answer reveals nothing about which projects exist.
    if not could_send(type(envelope.command), envelope.audit.department):
        raise Rejection("forbidden.type", department=envelope.audit.department, type=envelope.audit.message_type)
    project = uow.find_project(envelope.project_code) if envelope.project_code else None
    warnings = assess(project, envelope.command, envelope.audit) if project is not None else ()
    if warnings:
        envelope = replace(envelope, audit=replace(envelope.audit, warnings=warnings))
    HANDLERS[type(envelope.command)](envelope.command, uow, envelope)
    return warnings

