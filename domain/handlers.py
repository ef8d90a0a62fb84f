"""Command handlers: one plain function per message type, listed in `HANDLERS`.

A handler checks every rule first and only then triggers events, so a rejection never leaves
a half-changed aggregate behind. It reaches aggregates through a `Workspace` (the unit of
work of one batch), which the application layer implements over the event store.
"""

from __future__ import annotations

from datetime import date
from typing import Callable, Final, Protocol

from domain import messages as m
from domain.codes import STAGES, ProjectCode
from domain.messages import Envelope, could_send, require_may_send
from domain.project import Project
from domain.quota import QuotaPool
from domain.reduction import EmissionReduction
from domain.rejections import Rejection


class Workspace(Protocol):
    """The aggregates one message may read and change; new ones are added with `add`."""

    def find_project(self, code: str) -> Project | None: ...

    def find_pool(self, district: str, year: int, factor: str) -> QuotaPool | None: ...

    def find_reduction(self, reduction_id: str) -> EmissionReduction | None: ...

    def add(self, aggregate: Project | QuotaPool | EmissionReduction) -> None: ...


def project_of(ws: Workspace, envelope: Envelope) -> Project:
    assert envelope.project_code is not None
    project = ws.find_project(envelope.project_code)
    if project is None:
        raise Rejection("unknown_project", f"no project is registered as {envelope.project_code}")
    return project


def require_sender(envelope: Envelope, project: Project | None = None, **roles: str | None) -> None:
    if project is not None:
        roles = {"owner": project.department, "district": project.district, **roles}
    require_may_send(envelope.audit.message_type, envelope.audit.department, **roles)


def reduction_of(ws: Workspace, reduction_id: str) -> EmissionReduction:
    reduction = ws.find_reduction(reduction_id)
    if reduction is None:
        raise Rejection("unknown_reference", f"no emission reduction is registered as {reduction_id!r}")
    return reduction


# --- Handlers ------------------------------------------------------------------------------


def register_project(cmd: m.RegisterProject, ws: Workspace, env: Envelope) -> None:
    assert env.project_code is not None
    # A district portal registers only codes of its own area; nobody registers a code of one
    # area for a project of another (it would lock that district out of its own code).
    area = ProjectCode(env.project_code).area
    require_sender(env, district=area)
    if area != cmd.district:
        raise Rejection("invalid", f"payload.district: {cmd.district} is not the area {area} of the project code")
    if ws.find_project(env.project_code) is not None:
        raise Rejection("already_registered", f"project {env.project_code} is already registered")
    if cmd.planned_completion < cmd.planned_start:
        raise Rejection("invalid", "payload.planned_completion: before planned_start")
    ws.add(
        Project(
            code=env.project_code,
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
            audit=env.audit,
        )
    )


def set_plan(cmd: m.SetPlan, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_open()
    project.set_plan(cmd.year, cmd.planned_investment, env.audit)


def admit_project(cmd: m.AdmitProject, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_open()
    # The annual library (年度计划) admits a project again for each year.
    if project.in_library(cmd.library, cmd.year if cmd.library == "annual" else None):
        year = f" for {cmd.year}" if cmd.library == "annual" and cmd.year else ""
        raise Rejection("invalid_state", f"project {project.code} is already in the {cmd.library} library{year}")
    project.admit(cmd.library, cmd.year, cmd.opinion, env.audit)


def release_project(cmd: m.ReleaseProject, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    if not project.in_library(cmd.library):
        raise Rejection("invalid_state", f"project {project.code} is not in the {cmd.library} library")
    project.release(cmd.library, cmd.reason, env.audit)


def advance_stage(cmd: m.AdvanceStage, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_open()
    expected = STAGES[STAGES.index(project.stage) + 1] if project.stage != STAGES[-1] else None
    if cmd.stage != expected:
        raise Rejection(
            "stage_order",
            f"project {project.code} is in {project.stage}; the next stage is {expected or 'none'}, not {cmd.stage}",
        )
    project.advance_stage(cmd.stage, cmd.reason, env.audit)


def evaluate_bond(cmd: m.EvaluateBond, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_open()
    project.evaluate_bond(cmd.kind, cmd.evaluator, cmd.passed, env.audit)


def approve_exception(cmd: m.ApproveException, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_open()
    if cmd.reference in project.exceptions:
        raise Rejection("invalid_state", f"exception {cmd.reference!r} is already recorded")
    project.approve_exception(cmd.rule, cmd.reference, cmd.reason, env.audit)


def allocate_funds(cmd: m.AllocateFunds, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_may_receive_factor()
    if cmd.source == "special_bond":
        if not project.revenue_generating:
            raise Rejection(
                "bond_not_eligible",
                f"project {project.code} generates no revenue: special bonds need revenue (use general bonds)",
            )
        missing = [k for k in ("financial", "legal") if not project.evaluations.get(k)]
        if missing:
            raise Rejection(
                "bond_not_eligible",
                f"project {project.code} lacks a passed {' and '.join(missing)} evaluation for special bonds",
            )
    project.allocate_funds(cmd.source, cmd.amount, cmd.document, env.audit)


def supply_land(cmd: m.SupplyLand, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_may_receive_factor()
    year = env.audit.business_date.year
    if not project.in_library("annual", year):
        if cmd.exception is None:
            raise Rejection("not_in_annual_plan", f"project {project.code} is not in the annual library for {year}")
        if project.exceptions.get(cmd.exception) != "not_in_annual_plan":
            raise Rejection(
                "not_in_annual_plan",
                f"project {project.code} is not in the annual library and has no recorded exception {cmd.exception!r}",
            )
    # Land is capped only where a yearly land quota has been set for the district.
    pool = ws.find_pool(project.district, year, "land")
    if pool is not None:
        pool.check_draw(cmd.area_mu)
        pool.draw(env.audit.message_id, project.code, cmd.area_mu, env.audit)
    project.supply_land(cmd.parcel, cmd.area_mu, cmd.method, cmd.exception, env.audit)


def grant_energy(cmd: m.GrantEnergy, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_may_receive_factor()
    if not cmd.exempt:
        pool = ws.find_pool(project.district, cmd.year, "energy")
        if pool is None:
            raise Rejection(
                "quota_exceeded", f"no energy quota is set for district {project.district} in {cmd.year}"
            )
        pool.check_draw(cmd.tce)
        pool.draw(env.audit.message_id, project.code, cmd.tce, env.audit)
    project.grant_energy(cmd.tce, cmd.year, cmd.exempt, env.audit)


def register_reduction(cmd: m.RegisterReduction, ws: Workspace, env: Envelope) -> None:
    require_sender(env)
    if ws.find_reduction(cmd.reduction_id) is not None:
        raise Rejection("invalid_state", f"reduction {cmd.reduction_id!r} is already registered")
    ws.add(
        EmissionReduction(
            reduction_id=cmd.reduction_id,
            enterprise=cmd.enterprise,
            pollutant=cmd.pollutant,
            tonnes=cmd.tonnes,
            due_date=cmd.due_date,
            audit=env.audit,
        )
    )


def advance_emission(cmd: m.AdvanceEmission, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_may_receive_factor()
    reduction = reduction_of(ws, cmd.reduction_id)
    reduction.check_advance(cmd.pollutant, cmd.tonnes)
    reduction.advance(env.audit.message_id, project.code, cmd.tonnes, env.audit)
    project.advance_emission(cmd.reduction_id, cmd.pollutant, cmd.tonnes, env.audit)


def complete_reduction(cmd: m.CompleteReduction, ws: Workspace, env: Envelope) -> None:
    require_sender(env)
    reduction = reduction_of(ws, cmd.reduction_id)
    if reduction.completed_on is not None:
        raise Rejection("invalid_state", f"reduction {cmd.reduction_id!r} is already completed")
    reduction.complete(env.audit)


def provide_data(cmd: m.ProvideData, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_may_receive_factor()
    project.provide_data(cmd.kind, cmd.reference, env.audit)


def connect_utility(cmd: m.ConnectUtility, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_may_receive_factor()
    project.connect_utility(cmd.utility, cmd.reference, env.audit)


def assign_talent(cmd: m.AssignTalent, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_may_receive_factor()
    project.assign_talent(cmd.person, cmd.role, cmd.organisation, env.audit)


def escalate_issue(cmd: m.EscalateIssue, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    # Coordination (重大协调服务) is a factor: admitted projects only.
    project.check_may_receive_factor()
    if cmd.issue_id in project.issues:
        raise Rejection("invalid_state", f"issue {cmd.issue_id!r} is already escalated")
    project.escalate_issue(cmd.issue_id, cmd.title, cmd.level, cmd.assigned_to, cmd.due_date, env.audit)


def resolve_issue(cmd: m.ResolveIssue, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    issue = project.issues.get(cmd.issue_id)
    if issue is None:
        raise Rejection("unknown_reference", f"project {project.code} has no issue {cmd.issue_id!r}")
    require_sender(env, project, assignee=issue["assigned_to"])
    if issue["resolved_on"] is not None:
        raise Rejection("invalid_state", f"issue {cmd.issue_id!r} is already resolved")
    project.resolve_issue(cmd.issue_id, cmd.resolution, env.audit)


def not_after_report(day: date, env: Envelope) -> None:
    # A date in a payload says when it happened; it cannot be later than the report of it.
    if day > env.audit.business_date:
        raise Rejection("invalid", f"payload.date: {day} is after the message's occurred_at ({env.audit.business_date})")


def start_construction(cmd: m.StartConstruction, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    not_after_report(cmd.date, env)
    project.check_open()
    if project.started_on is not None:
        raise Rejection("stage_order", f"project {project.code} already started on {project.started_on}")
    project.start_construction(cmd.date, env.audit)


def report_investment(cmd: m.ReportInvestment, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    if project.cancelled_on is not None:
        raise Rejection("closed_project", f"project {project.code} is cancelled")
    project.report_investment(cmd.period, cmd.completed, env.audit)


def complete_project(cmd: m.CompleteProject, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    not_after_report(cmd.date, env)
    project.check_open()
    if project.started_on is None:
        raise Rejection("stage_order", f"project {project.code} cannot complete before construction starts")
    if cmd.date < project.started_on:
        raise Rejection("stage_order", f"completion {cmd.date} is before the start {project.started_on}")
    project.complete(cmd.date, env.audit)


def cancel_project(cmd: m.CancelProject, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    require_sender(env, project)
    project.check_open()
    project.cancel(cmd.reason, env.audit)


def reclaim_factor(cmd: m.ReclaimFactor, ws: Workspace, env: Envelope) -> None:
    project = project_of(ws, env)
    grant = project.live_grant(cmd.grant_id, cmd.factor)
    require_sender(env, project, grantor=grant.department)
    if cmd.factor in ("land", "energy") and not grant.detail.get("exempt"):
        year = grant.detail.get("year", grant.granted_on.year)
        pool = ws.find_pool(project.district, year, cmd.factor)
        if pool is not None and cmd.grant_id in pool.drawn:
            pool.give_back(cmd.grant_id, cmd.reason, env.audit)
    if cmd.factor == "emission":
        reduction = reduction_of(ws, grant.detail["reduction_id"])
        reduction.give_back(cmd.grant_id, cmd.reason, env.audit)
    project.reclaim(cmd.factor, cmd.grant_id, cmd.reason, env.audit)


def set_quota(cmd: m.SetQuota, ws: Workspace, env: Envelope) -> None:
    # Land quotas come from natural resources, energy quotas from development and reform.
    owner = {"land": "natural_resources", "energy": "development_reform"}[cmd.factor]
    if env.audit.department != owner:
        raise Rejection("forbidden", f"{env.audit.department} may not set the {cmd.factor} quota")
    pool = ws.find_pool(cmd.district, cmd.year, cmd.factor)
    if pool is None:
        ws.add(QuotaPool(district=cmd.district, year=cmd.year, factor=cmd.factor, amount=cmd.amount, audit=env.audit))
    else:
        pool.set_quota(cmd.amount, env.audit)


Handler = Callable[..., None]

#: The one table from message type to handler.
HANDLERS: Final[dict[type[m.Command], Handler]] = {
    m.RegisterProject: register_project,
    m.SetPlan: set_plan,
    m.AdmitProject: admit_project,
    m.ReleaseProject: release_project,
    m.AdvanceStage: advance_stage,
    m.AllocateFunds: allocate_funds,
    m.EvaluateBond: evaluate_bond,
    m.SupplyLand: supply_land,
    m.GrantEnergy: grant_energy,
    m.RegisterReduction: register_reduction,
    m.AdvanceEmission: advance_emission,
    m.CompleteReduction: complete_reduction,
    m.ProvideData: provide_data,
    m.ConnectUtility: connect_utility,
    m.AssignTalent: assign_talent,
    m.EscalateIssue: escalate_issue,
    m.ResolveIssue: resolve_issue,
    m.StartConstruction: start_construction,
    m.ReportInvestment: report_investment,
    m.CompleteProject: complete_project,
    m.CancelProject: cancel_project,
    m.ReclaimFactor: reclaim_factor,
    m.ApproveException: approve_exception,
    m.SetQuota: set_quota,
}


def handle(envelope: Envelope, ws: Workspace) -> None:
    """Run the envelope's command; raises `Rejection` when a rule refuses it."""
    # A sender that could never send this type is refused before anything is looked up, so
    # the answer reveals nothing about which projects exist.
    if not could_send(envelope.audit.message_type, envelope.audit.department):
        raise Rejection("forbidden", f"{envelope.audit.department} may not send {envelope.audit.message_type}")
    HANDLERS[type(envelope.command)](envelope.command, ws, envelope)

