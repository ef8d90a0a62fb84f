"""Helpers for read-model tests: a demo store with its read models built, dumps to compare row by
row, and the slow reference of alerts."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from datetime import date
from typing import Any, Iterator

from fastapi.testclient import TestClient

from api.app import create_app
from domain.approval import LandApproval
from domain.project import GRANT_EVENTS, Project
from domain.reduction import EmissionReduction, reduction_id_of
from domain.supervision import (
    Alert,
    ApprovalFact,
    CaseFact,
    GrantFact,
    IssueFact,
    LibraryFact,
    PlanFact,
    ProjectFacts,
    ReductionFact,
    ReportFact,
    Thresholds,
    evaluate,
    evaluate_approval,
)
from infra.settings import Settings
from projections.catalog import PROJECTIONS, Catalog
from projections.read import ReadModels
from projections.runner import Runner
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import ADMIN, LOCAL
from yaosu.demo import batches, demo_messages, recording_times


@contextmanager
def served(ledger: Ledger, settings: Settings) -> Iterator[TestClient]:
    """The HTTP API over `ledger`, its read models caught up with what is stored; the ledger closed after."""
    runner = Runner(ledger, settings)
    runner.run_until_caught_up()
    runner.close()
    reads = ReadModels(settings)
    try:
        with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as test:
            yield test
    finally:
        reads.close()
        ledger.close()


SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}


@contextmanager
def demo_client(settings: Settings, projects: int) -> Iterator[TestClient]:
    """The HTTP API over a store loaded with a demo year of `projects` projects, its read models caught up."""
    with demo_store(settings, projects) as (ledger, reads), \
            TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as test:
        yield test


def read_json(client: TestClient, path: str) -> Any:
    """A read route's answer as a supervisor reads it: 200, JSON."""
    answer = client.get(path, headers=SUPERVISOR)
    assert answer.status_code == 200, answer.text
    return answer.json()


@contextmanager
def demo_store(settings: Settings, projects: int) -> Iterator[tuple[Ledger, ReadModels]]:
    """A store loaded with a demo year of `projects` projects, its read models caught up."""
    ledger = build_ledger(settings)
    messages = demo_messages(2021, projects=projects)
    # Recorded as `yaosu demo` records them: each the day it happened or a few days after.
    for chunk, recorded_at in zip(batches(messages, 500), batches(recording_times(messages), 500)):
        ledger.submit(chunk, principal=ADMIN, channel="test", recorded_at=recorded_at)
    runner = Runner(ledger, settings)
    runner.run_until_caught_up()
    runner.close()
    reads = ReadModels(settings)
    try:
        yield ledger, reads
    finally:
        reads.close()
        ledger.close()


def dump(catalog: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every serving read-model table, sorted, keyed by projection.table."""
    rows = {}
    for projection in PROJECTIONS:
        for logical, physical in catalog.active(projection).items():
            table = next(t for t in projection.tables if t.name == logical)
            found = catalog.db.query(f"SELECT {', '.join(table.columns)} FROM {physical}")
            rows[f"{projection.name}.{logical}"] = sorted(
                (tuple(table.decode(r).values()) for r in found), key=repr)
    return rows


def project_codes(ledger: Ledger) -> list[str]:
    codes, after = [], 0
    while batch := ledger.feed(after, 1000).items:
        codes += [i.event.code for i in batch if isinstance(i.event, Project.Registered)]
        after = batch[-1].position
    return codes


def facts_from_history(ledger: Ledger, code: str) -> ProjectFacts:
    """The facts of one project rebuilt by replaying its whole history: the slow reference."""
    events = [item.event for item in ledger.history(code)]
    registered: Any = events[0]
    grants: dict[str, GrantFact] = {}
    plans, reports, issues, stays = [], [], {}, []
    amendments: list[tuple[date, date]] = []
    cases: dict[str, CaseFact] = {}
    dates: dict[str, date | None] = {"started_on": None, "completed_on": None, "cancelled_on": None}
    for e in events:
        a: Any = e
        when = a.audit.business_date if hasattr(a, "audit") else None
        if type(e) in GRANT_EVENTS:
            factor, quantity = GRANT_EVENTS[type(e)]
            grants[a.audit.message_id] = GrantFact(
                a.audit.message_id, factor, when, reduction_id=getattr(a, "reduction_id", None),
                leader=a.person if getattr(a, "role", None) == "responsible_leader" else None,
                quantity=getattr(a, quantity) if quantity else None, start_by=getattr(a, "start_by", None))
        elif isinstance(e, Project.FundsDisbursed):  # v1.2: the facts of the factor-level rules
            grants[a.grant_id] = dataclasses.replace(grants[a.grant_id], disbursed=(
                *grants[a.grant_id].disbursed, (a.date, a.amount)))
        elif isinstance(e, Project.Amended):
            amendments += [(when, a.planned_start)] if a.planned_start else []
        elif isinstance(e, Project.SupervisionAssigned):
            cases[a.case_id] = CaseFact(a.case_id, a.rule, a.grant_id, a.responsible, when, a.due_date)
        elif isinstance(e, Project.SupervisionResponded):
            cases[a.case_id] = dataclasses.replace(cases[a.case_id], responded_on=(
                *cases[a.case_id].responded_on, when))
        elif isinstance(e, Project.SupervisionClosed):
            cases[a.case_id] = dataclasses.replace(cases[a.case_id], closed_on=when, outcome=a.outcome)
        elif isinstance(e, Project.FactorReclaimed):
            grants[a.grant_id] = dataclasses.replace(grants[a.grant_id], reclaimed_on=when)
        elif isinstance(e, Project.PlanSet):
            plans.append(PlanFact(a.year, a.planned_investment, when))
        elif isinstance(e, Project.InvestmentReported):
            reports.append(ReportFact(a.period, a.completed, when))
        elif isinstance(e, Project.IssueEscalated):
            earlier = issues[a.issue_id].escalations if a.issue_id in issues else ()
            issues[a.issue_id] = IssueFact(a.issue_id, a.title, (*earlier, (when, a.due_date)))
        elif isinstance(e, Project.IssueResolved):
            issues[a.issue_id] = dataclasses.replace(issues[a.issue_id], resolved_on=when)
        elif isinstance(e, Project.Admitted):
            stays.append(LibraryFact(a.library, a.year, when))
        elif isinstance(e, Project.Released):
            stays = [dataclasses.replace(s, released_on=when) if s.library == a.library and s.released_on is None
                     else s for s in stays]
        elif isinstance(e, Project.ConstructionStarted):
            dates["started_on"] = a.date
        elif isinstance(e, Project.Completed):
            dates["completed_on"] = a.date
        elif isinstance(e, Project.Cancelled):
            dates["cancelled_on"] = when
    reductions = {}
    for rid in {g.reduction_id for g in grants.values() if g.reduction_id}:
        history: list[Any] = list(ledger.events.get(reduction_id_of(rid)))
        done = [e.audit.business_date for e in history if isinstance(e, EmissionReduction.Completed)]
        reductions[rid] = ReductionFact(rid, history[0].due_date, done[0] if done else None)
    return ProjectFacts(code=code, name=registered.name, district=registered.district,
                        department=registered.department, registered_on=registered.audit.business_date,
                        planned_start=registered.planned_start, grants=tuple(grants.values()), plans=tuple(plans),
                        reports=tuple(reports), issues=tuple(issues.values()), reductions=reductions,
                        libraries=tuple(stays), start_amendments=tuple(amendments), cases=tuple(cases.values()),
                        **dates)


def reference_facts(ledger: Ledger) -> list[ProjectFacts]:
    return [facts_from_history(ledger, code) for code in project_codes(ledger)]


def reference_approvals(ledger: Ledger) -> list[ApprovalFact]:
    """Every land approval (批次用地) and the supplies drawn on it, replayed from the log event by event."""
    approvals: dict[str, ApprovalFact] = {}
    after = 0
    while batch := ledger.feed(after, 1000).items:
        for e in (i.event for i in batch):
            if isinstance(e, LandApproval.Approved):
                approvals[e.approval_id] = ApprovalFact(e.approval_id, e.district, e.area_mu, e.date)
            elif isinstance(e, Project.LandSupplied) and e.approval_id in approvals:
                fact = approvals[e.approval_id]
                approvals[e.approval_id] = dataclasses.replace(
                    fact, supplied=(*fact.supplied, (e.audit.business_date, e.area_mu)))
        after = batch[-1].position
    return list(approvals.values())


def reference_alerts(facts: list[ProjectFacts], as_of: date, thresholds: Thresholds = Thresholds(),
                     approvals: list[ApprovalFact] = ()) -> list[Alert]:  # type: ignore[assignment]
    found = [a for f in facts for a in evaluate(f, as_of, thresholds)]
    found += [a for approval in approvals for a in evaluate_approval(approval, as_of, thresholds)]
    return sorted(found, key=lambda a: (a.district, a.project_code or "", a.rule, a.ref or ""))
