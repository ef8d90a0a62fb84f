"""Every rule of the contract, each with the rejection code it answers with.

These run the message pipeline on the in-memory store: they test the domain's rules, not
storage (the storage tests run the same pipeline on SQLite and PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import pytest

from domain.commands import COMMANDS
from domain.quota import quota_pool_id
from domain.reduction import reduction_id_of
from domain.reference import is_department
from domain.senders import ANYONE, ASSIGNEE, DISTRICT, GRANTOR, OWNER
from infra.tokens import Principal
from service.ledger import Ledger
from tests.conftest import submit
from tests.portal import CODE, FACTOR_MESSAGES, OTHER, admitted, energy_quota, land_quota, msg, reduction, register
from tests.unit.test_v12_messages import V12_TYPES


def accept_all(ledger: Ledger, *bodies: Any) -> None:
    results = submit(ledger, *bodies)
    assert [r.status for r in results] == ["accepted"] * len(bodies), results


def rejected(ledger: Ledger, body: dict[str, Any], principal: Principal | None = None) -> str:
    (result,) = submit(ledger, body, **({"principal": principal} if principal else {}))
    assert result.status == "rejected", result
    assert result.reason
    return str(result.code)


def factor(type_: str, **changes: Any) -> dict[str, Any]:
    dept, payload = FACTOR_MESSAGES[type_]
    return msg(type_, {**payload, **changes}, dept=dept, at="2021-03-02T10:00:00+08:00")


@pytest.fixture
def ready(memory_ledger: Ledger) -> Ledger:
    """A project in the municipal and annual libraries, with quotas and a reduction to draw on."""
    accept_all(memory_ledger, *admitted(CODE, "annual"), energy_quota(5000), land_quota(5000), reduction("RD-1", 100))
    return memory_ledger


def project(ledger: Ledger, code: str = CODE) -> Any:
    found = ledger.project(code)
    assert found is not None
    return found


# --- every message type has its effect ------------------------------------------------------


def test_every_message_type_is_accepted_with_its_effect(ready: Ledger) -> None:
    bodies = [factor(t) for t in FACTOR_MESSAGES]
    bodies += [
        msg("plan.set", {"year": 2021, "planned_investment": 4800}),
        msg("stage.advanced", {"stage": "generation"}),
        msg("stage.advanced", {"stage": "approval"}),
        msg("stage.advanced", {"stage": "construction"}),
        msg("bond.evaluated", {"kind": "financial", "evaluator": "某会计师事务所", "passed": True}, dept="finance"),
        msg("exception.approved", {"rule": "not_in_annual_plan", "reference": "EX-1", "reason": "民生"}),
        msg("issue.resolved", {"issue_id": "I-1", "resolution": "已解决"}, dept="natural_resources"),
        msg("construction.started", {"date": "2021-03-01"}, dept="district:620102"),
        msg("investment.reported", {"period": "2021-02", "completed": 400}, dept="statistics"),
        msg("project.released", {"library": "annual", "reason": "转入下年度"}),
        msg("emission.reduction_completed", {"reduction_id": "RD-1"}, code=None, dept="ecology_environment"),
        msg("project.admitted", {"library": "investment_attraction"}),
        msg("investment.pitched", {"event": "第27届兰洽会", "date": "2021-03-01"}, dept="cooperation_exchange"),
    ]
    accept_all(ready, *bodies)
    p = project(ready)
    assert {g.factor for g in p.grants.values()} == {"funds", "land", "energy", "emission", "data", "utilities", "talent"}
    assert p.plans == {2021: 4800}
    assert p.stage == "construction"
    assert p.evaluations == {"financial": True}
    assert p.exceptions == {"EX-1": "not_in_annual_plan"}
    assert p.issues["I-1"]["resolved_on"] is not None
    assert str(p.started_on) == "2021-03-01"
    assert p.completed_in(2021) == 400
    assert "annual" not in p.libraries and "municipal" in p.libraries
    assert [pitch["event"] for pitch in p.pitches] == ["第27届兰洽会"]
    pool = ready.repository.get(quota_pool_id("620102", 2021, "energy"))
    assert pool.remaining == 4000
    red = ready.repository.get(reduction_id_of("RD-1"))
    assert red.remaining == 90 and red.completed_on is not None
    grant_id = next(g.grant_id for g in p.grants.values() if g.factor == "energy")
    accept_all(ready, msg("factor.reclaimed", {"factor": "energy", "grant_id": grant_id, "reason": "未按期开工"}),
               msg("project.completed", {"date": "2021-12-20"}, at="2021-12-21T09:00:00+08:00"))
    p = project(ready)
    assert p.grants[grant_id].reclaimed_on is not None and p.completed_on is not None
    assert ready.repository.get(pool.id).remaining == 5000
    accept_all(ready, register(OTHER, district="620103"), msg("project.cancelled", {"reason": "撤销"}, code=OTHER))
    assert project(ready, OTHER).cancelled_on is not None
    handled = {b["type"] for b in bodies} | {"factor.reclaimed", "project.completed", "project.registered",
                                              "project.cancelled", "project.admitted", "quota.set",
                                              "emission.reduction_registered"}
    assert handled | V12_TYPES == set(COMMANDS)  # v1.2's, each with its effect in tests/unit/test_v12_messages.py


# --- existence -------------------------------------------------------------------------------


def test_unknown_project(memory_ledger: Ledger) -> None:
    assert rejected(memory_ledger, factor("data.provided")) == "unknown_project"


def test_already_registered(memory_ledger: Ledger) -> None:
    accept_all(memory_ledger, register())
    assert rejected(memory_ledger, register()) == "already_registered"


def test_unknown_type(memory_ledger: Ledger) -> None:
    assert rejected(memory_ledger, msg("project.renamed", {"name": "x"})) == "unknown_type"


# --- admit first, then guarantee (先入库,后保障) ---------------------------------------------


@pytest.mark.parametrize("type_", sorted(FACTOR_MESSAGES))
def test_no_factor_before_admission(memory_ledger: Ledger, type_: str) -> None:
    accept_all(memory_ledger, register(), energy_quota(5000), reduction())
    assert rejected(memory_ledger, factor(type_)) == "not_admitted"
    accept_all(memory_ledger, msg("project.admitted", {"library": "municipal"}),
               msg("project.released", {"library": "municipal", "reason": "不符合条件"}))
    assert rejected(memory_ledger, factor(type_)) == "not_admitted"


# --- land -----------------------------------------------------------------------------------


def test_land_needs_the_annual_library(memory_ledger: Ledger) -> None:
    accept_all(memory_ledger, *admitted(CODE))
    assert rejected(memory_ledger, factor("land.supplied")) == "not_in_annual_plan"


def test_land_needs_the_annual_library_of_that_year(memory_ledger: Ledger) -> None:
    accept_all(memory_ledger, *admitted(CODE), msg("project.admitted", {"library": "annual", "year": 2022}))
    assert rejected(memory_ledger, factor("land.supplied")) == "not_in_annual_plan"


def test_land_outside_the_annual_library_with_a_recorded_exception(memory_ledger: Ledger) -> None:
    accept_all(memory_ledger, *admitted(CODE), land_quota(5000))
    assert rejected(memory_ledger, factor("land.supplied", exception="EX-9")) == "not_in_annual_plan"
    accept_all(memory_ledger, msg("exception.approved", {"rule": "not_in_annual_plan", "reference": "EX-9",
                                                          "reason": "省重点交通项目"}))
    accept_all(memory_ledger, factor("land.supplied", exception="EX-9"))


def test_the_annual_library_admits_a_project_for_each_year(memory_ledger: Ledger) -> None:
    accept_all(memory_ledger, *admitted(CODE, "annual"), *(land_quota(100, year=year) for year in (2022, 2023)))
    assert rejected(memory_ledger, msg("project.admitted", {"library": "annual", "year": 2021})) == "invalid_state"
    accept_all(memory_ledger, msg("project.admitted", {"library": "annual", "year": 2022}))
    accept_all(memory_ledger, msg("land.supplied", {"parcel": "P", "area_mu": 1, "method": "transfer"},
                                  dept="natural_resources", at="2022-02-01T09:00:00+08:00"))
    assert rejected(memory_ledger, msg("land.supplied", {"parcel": "P", "area_mu": 1, "method": "transfer"},
                                       dept="natural_resources", at="2023-02-01T09:00:00+08:00")) == "not_in_annual_plan"


def test_a_sender_that_could_never_send_a_type_is_forbidden_before_anything_is_looked_up(
        memory_ledger: Ledger) -> None:
    # No project is registered: the answer must not tell the sender so.
    assert rejected(memory_ledger, factor("land.supplied") | {"actor": {"department": "water", "user": "x"}}) == "forbidden"


def test_land_draws_on_the_land_quota(ready: Ledger) -> None:
    accept_all(ready, land_quota(100))
    accept_all(ready, factor("land.supplied", area_mu=80))
    assert rejected(ready, factor("land.supplied", area_mu=30)) == "quota_exceeded"


# --- energy ---------------------------------------------------------------------------------


def test_energy_fits_the_district_quota(ready: Ledger) -> None:
    accept_all(ready, factor("energy.granted", tce=4000))
    assert rejected(ready, factor("energy.granted", tce=1001)) == "quota_exceeded"
    accept_all(ready, factor("energy.granted", tce=1000))


def test_energy_without_a_quota_is_refused(memory_ledger: Ledger) -> None:
    accept_all(memory_ledger, *admitted(CODE))
    assert rejected(memory_ledger, factor("energy.granted")) == "quota_exceeded"


def test_exempt_energy_does_not_count_against_the_quota(ready: Ledger) -> None:
    accept_all(ready, factor("energy.granted", tce=100000, year=2020, exempt=True), factor("energy.granted", tce=5000))
    assert rejected(ready, factor("energy.granted", tce=1)) == "quota_exceeded"


def test_energy_quota_is_per_district(ready: Ledger) -> None:
    accept_all(ready, energy_quota(10, district="620103"))
    accept_all(ready, *admitted(OTHER, district="620103"))
    assert rejected(ready, msg("energy.granted", {"tce": 20, "year": 2021}, code=OTHER)) == "quota_exceeded"


def test_reclaimed_energy_returns_to_the_quota(ready: Ledger) -> None:
    grant = factor("energy.granted", tce=5000)
    accept_all(ready, grant)
    accept_all(ready, msg("factor.reclaimed", {"factor": "energy", "grant_id": grant["message_id"], "reason": "沉淀"}))
    accept_all(ready, factor("energy.granted", tce=5000))


# --- emission credits -------------------------------------------------------------------------


def test_an_advance_fits_what_remains_of_its_reduction(ready: Ledger) -> None:
    accept_all(ready, factor("emission.advanced", tonnes=60))
    assert rejected(ready, factor("emission.advanced", tonnes=41)) == "credit_exceeded"
    accept_all(ready, factor("emission.advanced", tonnes=40))


def test_an_advance_is_of_the_reductions_pollutant(ready: Ledger) -> None:
    assert rejected(ready, factor("emission.advanced", pollutant="NOx")) == "credit_exceeded"


def test_an_advance_names_a_registered_reduction(ready: Ledger) -> None:
    assert rejected(ready, factor("emission.advanced", reduction_id="RD-404")) == "unknown_reference"


# --- special bonds ---------------------------------------------------------------------------


def bond(amount: float = 1000) -> dict[str, Any]:
    return msg("funds.allocated", {"source": "special_bond", "amount": amount}, dept="finance")


def evaluation(kind: str, passed: bool = True) -> dict[str, Any]:
    return msg("bond.evaluated", {"kind": kind, "evaluator": "第三方", "passed": passed}, dept="finance")


def test_special_bonds_need_revenue(memory_ledger: Ledger) -> None:
    accept_all(memory_ledger, *admitted(CODE, "special_bond", "general_bond", revenue_generating=False),
               evaluation("financial"), evaluation("legal"))
    assert rejected(memory_ledger, bond()) == "bond_not_eligible"
    accept_all(memory_ledger, msg("funds.allocated", {"source": "general_bond", "amount": 1000}, dept="finance"))


def test_special_bonds_need_both_evaluations_passed(ready: Ledger) -> None:
    accept_all(ready, msg("project.admitted", {"library": "special_bond"}))
    assert rejected(ready, bond()) == "bond_not_eligible"
    accept_all(ready, evaluation("financial"))
    assert rejected(ready, bond()) == "bond_not_eligible"
    accept_all(ready, evaluation("legal", passed=False))
    assert rejected(ready, bond()) == "bond_not_eligible"
    accept_all(ready, evaluation("legal"))
    accept_all(ready, bond())


# --- stages and milestones -------------------------------------------------------------------


def stage(name: str) -> dict[str, Any]:
    return msg("stage.advanced", {"stage": name})


def test_stages_move_forward_one_step_at_a_time(ready: Ledger) -> None:
    assert rejected(ready, stage("approval")) == "stage_order"
    accept_all(ready, stage("generation"))
    assert rejected(ready, stage("generation")) == "stage_order"
    accept_all(ready, stage("approval"), stage("construction"), stage("completion"))
    assert rejected(ready, stage("construction")) == "stage_order"


def test_construction_starts_once_and_completion_follows_it(ready: Ledger) -> None:
    accept_all(ready, stage("generation"), stage("approval"), stage("construction"))
    assert rejected(ready, msg("project.completed", {"date": "2021-12-01"}, at="2021-12-31T18:00:00+08:00")) == "stage_order"
    accept_all(ready, msg("construction.started", {"date": "2021-04-01"}, at="2021-12-31T18:00:00+08:00"))
    assert rejected(ready, msg("construction.started", {"date": "2021-05-01"}, at="2021-12-31T18:00:00+08:00")) == "stage_order"
    assert rejected(ready, msg("project.completed", {"date": "2021-03-01"}, at="2021-12-31T18:00:00+08:00")) == "stage_order"
    accept_all(ready, msg("project.completed", {"date": "2021-12-01"}, at="2021-12-31T18:00:00+08:00"))


def test_a_start_or_completion_cannot_be_dated_after_its_report(ready: Ledger) -> None:
    assert rejected(ready, msg("construction.started", {"date": "2021-03-02"})) == "invalid"  # reported 03-01
    accept_all(ready, msg("construction.started", {"date": "2021-03-01"}))
    assert rejected(ready, msg("project.completed", {"date": "2022-06-30"})) == "invalid"
    accept_all(ready, factor("funds.allocated"))  # the project is not closed by a future date


@pytest.mark.parametrize("closing", ["completed", "cancelled"])
@pytest.mark.parametrize("type_", sorted(FACTOR_MESSAGES))
def test_a_closed_project_takes_no_more_factors(ready: Ledger, closing: str, type_: str) -> None:
    if closing == "completed":
        accept_all(ready, stage("generation"), stage("approval"), stage("construction"))
        accept_all(ready, msg("construction.started", {"date": "2021-02-01"}), msg("project.completed", {"date": "2021-02-28"}))  # noqa: E501
    else:
        accept_all(ready, msg("project.cancelled", {"reason": "撤销"}))
    assert rejected(ready, factor(type_)) == "closed_project"


# --- who may send what -------------------------------------------------------------------------


def test_every_command_says_who_may_send_it() -> None:
    assert all(command.SENDERS for command in COMMANDS.values())


FIXED_SENDERS = {t: {d for d in c.SENDERS if not d.startswith("@")} for t, c in COMMANDS.items()}


@pytest.mark.parametrize("type_", sorted(FACTOR_MESSAGES))
def test_a_factor_from_a_unit_that_does_not_grant_it_is_forbidden(ready: Ledger, type_: str) -> None:
    _, payload = FACTOR_MESSAGES[type_]
    if ANYONE in COMMANDS[type_].SENDERS:
        accept_all(ready, msg(type_, payload, dept="statistics"))
        return
    assert rejected(ready, msg(type_, payload, dept="statistics")) == "forbidden"


@pytest.mark.parametrize("type_,payload", [
    ("plan.set", {"year": 2021, "planned_investment": 1}),
    ("stage.advanced", {"stage": "generation"}),
    ("bond.evaluated", {"kind": "legal", "evaluator": "x", "passed": True}),
    ("construction.started", {"date": "2021-04-01"}),
    ("investment.reported", {"period": "2021-02", "completed": 1}),
    ("project.completed", {"date": "2021-04-01"}),
    ("project.cancelled", {"reason": "x"}),
    ("exception.approved", {"rule": "not_in_annual_plan", "reference": "R", "reason": "x"}),
    ("project.admitted", {"library": "fyp14"}),
])
def test_project_messages_from_the_wrong_department_are_forbidden(ready: Ledger, type_: str, payload: dict) -> None:
    assert rejected(ready, msg(type_, payload, dept="water")) == "forbidden"


def test_the_owning_department_may_admit_to_the_municipal_library_but_another_may_not(memory_ledger: Ledger) -> None:
    accept_all(memory_ledger, register())
    assert rejected(memory_ledger, msg("project.admitted", {"library": "municipal"}, dept="transport")) == "forbidden"
    accept_all(memory_ledger, msg("project.admitted", {"library": "municipal"}, dept="industry_it"))


def test_a_district_portal_registers_and_starts_only_its_own_projects(memory_ledger: Ledger) -> None:
    assert rejected(memory_ledger, {**register(), "actor": {"department": "district:620103", "user": "x"}}) == "forbidden"
    accept_all(memory_ledger, {**register(), "actor": {"department": "district:620102", "user": "x"}})
    assert rejected(memory_ledger, msg("construction.started", {"date": "2021-03-01"}, dept="district:620103")) == "forbidden"
    accept_all(memory_ledger, msg("construction.started", {"date": "2021-03-01"}, dept="district:620102"))


def test_only_the_assignee_or_development_reform_resolves_an_issue(ready: Ledger) -> None:
    accept_all(ready, factor("issue.escalated"))
    resolve = {"issue_id": "I-1", "resolution": "ok"}
    assert rejected(ready, msg("issue.resolved", resolve, dept="water")) == "forbidden"
    accept_all(ready, msg("issue.resolved", resolve, dept="natural_resources"))
    assert rejected(ready, msg("issue.resolved", resolve)) == "invalid_state"
    assert rejected(ready, msg("issue.resolved", {**resolve, "issue_id": "I-404"})) == "unknown_reference"


def test_only_the_granting_unit_reclaims(ready: Ledger) -> None:
    grant = factor("funds.allocated")
    accept_all(ready, grant)
    reclaim = {"factor": "funds", "grant_id": grant["message_id"], "reason": "未开工"}
    assert rejected(ready, msg("factor.reclaimed", reclaim, dept="development_reform")) == "forbidden"
    assert rejected(ready, msg("factor.reclaimed", {**reclaim, "factor": "land"}, dept="finance")) == "unknown_reference"
    accept_all(ready, msg("factor.reclaimed", reclaim, dept="finance"))
    assert rejected(ready, msg("factor.reclaimed", reclaim, dept="finance")) == "invalid_state"


def test_quotas_are_set_by_their_own_units(memory_ledger: Ledger) -> None:
    assert rejected(memory_ledger, {**energy_quota(1), "actor": {"department": "natural_resources", "user": "x"}}) == "forbidden"
    assert rejected(memory_ledger, {**land_quota(1), "actor": {"department": "development_reform", "user": "x"}}) == "forbidden"


def test_a_portal_token_submits_only_as_its_own_department(ready: Ledger) -> None:
    portal = Principal("nr", "portal", "natural_resources")
    assert rejected(ready, factor("funds.allocated"), portal) == "forbidden"
    (result,) = submit(ready, factor("land.supplied"), principal=portal)
    assert result.status == "accepted"


def test_a_supervisor_token_does_not_submit(ready: Ledger) -> None:
    assert rejected(ready, factor("data.provided"), Principal("s", "supervisor")) == "forbidden"


def test_fixed_senders_are_known_departments() -> None:
    assert all(is_department(d) for senders in FIXED_SENDERS.values() for d in senders)
    assert {OWNER, DISTRICT, ASSIGNEE, GRANTOR} <= {d for c in COMMANDS.values() for d in c.SENDERS}


# --- state ------------------------------------------------------------------------------------


def test_membership_changes_must_apply(ready: Ledger) -> None:
    assert rejected(ready, msg("project.admitted", {"library": "municipal"})) == "invalid_state"
    assert rejected(ready, msg("project.released", {"library": "fyp14", "reason": "x"})) == "invalid_state"


def test_a_reduction_is_registered_and_completed_once(ready: Ledger) -> None:
    assert rejected(ready, reduction("RD-1")) == "invalid_state"
    done = {"reduction_id": "RD-1"}
    accept_all(ready, msg("emission.reduction_completed", done, code=None, dept="ecology_environment"))
    assert rejected(ready, msg("emission.reduction_completed", done, code=None, dept="ecology_environment")) == "invalid_state"
    assert rejected(ready, msg("emission.reduction_completed", {"reduction_id": "RD-9"}, code=None,
                               dept="ecology_environment")) == "unknown_reference"


def test_an_issue_is_escalated_once(ready: Ledger) -> None:
    accept_all(ready, factor("issue.escalated"))
    assert rejected(ready, factor("issue.escalated")) == "invalid_state"


# --- idempotency ------------------------------------------------------------------------------


def test_a_resent_message_is_a_duplicate_with_no_second_effect(ready: Ledger) -> None:
    grant = factor("funds.allocated")
    accept_all(ready, grant)
    reordered = dict(reversed(list(grant.items())))  # same body, other key order
    assert [r.status for r in submit(ready, grant, reordered)] == ["duplicate", "duplicate"]
    assert len(project(ready).grants) == 1


def test_a_duplicate_within_one_batch(ready: Ledger) -> None:
    grant = factor("data.provided")
    assert [r.status for r in submit(ready, grant, grant)] == ["accepted", "duplicate"]
    assert len(project(ready).grants) == 1


def test_the_same_id_with_another_body_is_a_conflict(ready: Ledger) -> None:
    grant = factor("funds.allocated")
    accept_all(ready, grant)
    assert rejected(ready, {**grant, "payload": {**grant["payload"], "amount": 999}}) == "conflict"
    assert len(project(ready).grants) == 1


def test_a_resent_rejection_is_a_duplicate(memory_ledger: Ledger) -> None:
    body = factor("data.provided")
    assert rejected(memory_ledger, body) == "unknown_project"
    assert [r.status for r in submit(memory_ledger, body)] == ["duplicate"]
    assert len(memory_ledger.rejections().items) == 1
