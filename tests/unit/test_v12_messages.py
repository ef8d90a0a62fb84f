"""The write side of contract v1.2: every new message accepted or refused by the contract's rules, with the
code (and text code) it answers with. In-memory store: the rules, not storage (tests/e2e/test_v12_messages.py
posts the same messages over HTTP on SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.allocation import allocation_id_of
from domain.approval import approval_id_of
from domain.casebook import CaseNumber, case_number_id
from domain.commands import AllocationShare
from domain.envelope import MAX_ITEMS, parse_envelope
from domain.handlers import deviation_from
from domain.policy import WARNING_CODES
from domain.project import project_id
from domain.quota import quota_pool_id
from domain.rejections import REJECTION_CODES, Rejection
from infra.kafka import district_key
from infra.presenter import event_json
from infra.settings import Settings
from service.bootstrap import build_ledger
from service.ledger import Ledger
from service.pipeline import Result
from tests.conftest import submit
from tests.portal import CODE, OTHER, admitted, land_quota, msg, register

D = date.fromisoformat
#: CODE is registered on 2021-01-10 to start on 2021-04-01 (tests.portal.REGISTRATION).
MARCH = "2021-03-02T10:00:00+08:00"
JUNE = "2021-06-01T10:00:00+08:00"  # 61 days after the planned start: not_started yellow


def at(day: str) -> str:
    return f"{day}T10:00:00+08:00"


def one(ledger: Ledger, body: dict[str, Any]) -> Result:
    (result,) = submit(ledger, body)
    return result


def accepted(ledger: Ledger, *bodies: dict[str, Any]) -> list[Result]:
    results = submit(ledger, *bodies)
    assert [r.status for r in results] == ["accepted"] * len(bodies), results
    return results


def refused(ledger: Ledger, body: dict[str, Any], code: str, text: str | None = None) -> Result:
    """The message is rejected with `code` (and the text code `text`), kept, and changed nothing."""
    before = ledger.head()
    result = one(ledger, body)
    assert (result.status, result.code) == ("rejected", code), result
    if text is not None:
        assert result.detail_code == text, result
    assert result.reason and result.reason != result.detail_code
    assert ledger.head() == before + 1  # only its receipt: nothing half-applied
    return result


@pytest.fixture
def ready(memory_ledger: Ledger) -> Ledger:
    """CODE admitted to the municipal and annual (2021) libraries, a land quota for 2021 and 2022."""
    accepted(memory_ledger, *admitted(CODE, "annual"), land_quota(5000), land_quota(50, year=2022))
    return memory_ledger


def funds(amount: float = 100, mid: str = "grant-funds-1", source: str = "own_funds", when: str = MARCH,
          code: str = CODE) -> dict[str, Any]:
    return msg("funds.allocated", {"source": source, "amount": amount}, dept="finance", mid=mid, at=when, code=code)


def disburse(amount: float, day: str = "2021-03-02", grant: str = "grant-funds-1", when: str = MARCH,
             dept: str = "finance") -> dict[str, Any]:
    return msg("funds.disbursed", {"grant_id": grant, "amount": amount, "date": day}, dept=dept, at=when)


def land(area: float = 10, mid: str = "grant-land-1", when: str = MARCH, code: str = CODE,
         **more: Any) -> dict[str, Any]:
    return msg("land.supplied", {"parcel": f"P-{mid}", "area_mu": area, "method": "transfer", **more},
               dept="natural_resources", mid=mid, at=when, code=code)


def approve(approval_id: str = "LA-1", area: float = 100, district: str = "620102", day: str = "2021-02-01",
            when: str = MARCH, dept: str = "natural_resources") -> dict[str, Any]:
    return msg("land.approved", {"approval_id": approval_id, "district": district, "area_mu": area, "date": day},
               code=None, dept=dept, at=when)


def amend(when: str = JUNE, dept: str = "development_reform", code: str = CODE, mid: str | None = None,
          **changes: Any) -> dict[str, Any]:
    return msg("project.amended", {"reason": "征地拆迁滞后", **changes}, dept=dept, at=when, code=code, mid=mid)


def issue(issue_id: str = "I-9", due: str = "2021-02-01", when: str = "2021-01-20T09:00:00+08:00",
          code: str = CODE) -> dict[str, Any]:
    return msg("issue.escalated", {"issue_id": issue_id, "title": "拆迁", "level": "city",
                                   "assigned_to": "natural_resources", "due_date": due}, at=when, code=code)


def assign(case_id: str = "DB-1", rule: str = "issue_overdue", when: str = MARCH, dept: str = "supervision_office",
           due: str = "2021-03-31", code: str = CODE, **more: Any) -> dict[str, Any]:
    return msg("supervision.assigned", {"case_id": case_id, "rule": rule, "responsible": "natural_resources",
                                        "due_date": due, "demand": "限期办结", **more}, dept=dept, at=when, code=code)


def respond(case_id: str = "DB-1", when: str = "2021-03-10T10:00:00+08:00", dept: str = "natural_resources",
            expected_by: str = "2021-03-25", code: str = CODE, mid: str | None = None) -> dict[str, Any]:
    return msg("supervision.responded", {"case_id": case_id, "measures": "已召开协调会", "expected_by": expected_by},
               dept=dept, at=when, code=code, mid=mid)


def close(outcome: str, case_id: str = "DB-1", when: str = "2021-03-20T10:00:00+08:00",
          dept: str = "supervision_office", code: str = CODE) -> dict[str, Any]:
    return msg("supervision.closed", {"case_id": case_id, "outcome": outcome, "note": "销号"}, dept=dept, at=when,
               code=code)


def reclaim(grant: str, factor: str = "land", dept: str = "development_reform",
            when: str = "2021-03-15T10:00:00+08:00") -> dict[str, Any]:
    return msg("factor.reclaimed", {"factor": factor, "grant_id": grant, "reason": "闲置"}, dept=dept, at=when)


def adopt(shares: list[dict[str, Any]] | None = None, total: float = 100, allocation_id: str = "AL-1",
          factor: str = "land", dept: str = "natural_resources", when: str = MARCH, mid: str | None = None,
          **more: Any) -> dict[str, Any]:
    return msg("allocation.adopted", {
        "allocation_id": allocation_id, "year": 2022, "factor": factor, "total": total, "basis": "按排名分配",
        "shares": shares if shares is not None else [{"district": "620102", "amount": 60},
                                                     {"district": "620103", "amount": 40}], **more},
        code=None, dept=dept, at=when, mid=mid)


def pool(ledger: Ledger, district: str, year: int, factor: str) -> Any:
    return ledger.get(quota_pool_id(district, year, factor))


def project(ledger: Ledger, code: str = CODE) -> Any:
    found = ledger.project(code)
    assert found is not None
    return found


def warnings_of(result: Result) -> list[str]:
    return [w.code for w in result.warnings]


def test_the_new_codes_are_rejection_and_warning_codes() -> None:
    assert {"not_alerted", "not_cleared"} <= set(REJECTION_CODES)
    assert {"postponed_after_alert", "supervision_waived", "allocation_deviates"} <= set(WARNING_CODES)


# --- funds.disbursed ---------------------------------------------------------------------------


def test_a_disbursement_is_recorded_against_its_grant(ready: Ledger) -> None:
    accepted(ready, funds(100), disburse(30), disburse(20, dept="development_reform"))
    p = project(ready)
    assert p.disbursed("grant-funds-1") == 50
    assert p.disbursements["grant-funds-1"] == [(D("2021-03-02"), Decimal(30)), (D("2021-03-02"), Decimal(20))]


def test_a_disbursement_never_exceeds_the_allocation(ready: Ledger) -> None:
    accepted(ready, funds(100), disburse(60))
    result = refused(ready, disburse(40.5), "invalid", "invalid.beyond_allocated")
    assert result.detail_params == {"field": "payload.amount", "amount": Decimal("40.5"), "grant": "grant-funds-1",
                                    "allocated": 100, "disbursed": 60}
    accepted(ready, disburse(40))  # exactly what is left


def test_a_disbursement_names_a_live_funds_grant_of_its_project(ready: Ledger) -> None:
    accepted(ready, funds(100), land(10), register(OTHER, district="620103"))
    refused(ready, disburse(1, grant="nowhere"), "unknown_reference", "unknown_reference.no_grant")
    refused(ready, disburse(1, grant="grant-land-1"), "unknown_reference", "unknown_reference.no_grant")
    other = {**disburse(1), "project_code": OTHER}
    refused(ready, other, "unknown_reference", "unknown_reference.no_grant")
    accepted(ready, reclaim("grant-funds-1", factor="funds", dept="finance"))
    refused(ready, disburse(1), "invalid_state", "invalid_state.grant_reclaimed")


def test_a_disbursement_is_dated_between_its_grant_and_its_report(ready: Ledger) -> None:
    accepted(ready, funds(100))
    refused(ready, disburse(1, day="2021-02-28"), "invalid", "invalid.before_the_grant")
    refused(ready, disburse(1, day="2021-03-03"), "invalid", "invalid.after_the_report")


def test_only_finance_and_development_reform_disburse(ready: Ledger) -> None:
    accepted(ready, funds(100))
    refused(ready, disburse(1, dept="natural_resources"), "forbidden")
    refused(ready, disburse(1, dept="supervision_office"), "forbidden")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(allocated=st.integers(1, 1000), amounts=st.lists(st.integers(1, 400), min_size=1, max_size=8))
def test_whatever_is_sent_the_sum_disbursed_never_exceeds_the_sum_allocated(allocated: int,
                                                                             amounts: list[int]) -> None:
    ledger = build_ledger(Settings(store="memory://"))
    try:
        accepted(ledger, *admitted(CODE), funds(allocated))
        paid = 0
        for amount in amounts:
            result = one(ledger, disburse(amount))
            fits = paid + amount <= allocated
            assert (result.status, result.code) == (("accepted", None) if fits else ("rejected", "invalid"))
            paid += amount if fits else 0
        assert project(ledger).disbursed("grant-funds-1") == paid <= allocated
    finally:
        ledger.close()


# --- land.approved, and land.supplied drawing on it --------------------------------------------


def test_an_approval_is_recorded_under_its_id(ready: Ledger) -> None:
    accepted(ready, approve())
    approval = ready.get(approval_id_of("LA-1"))
    assert (approval.district, approval.area_mu, approval.approved_on, approval.unsupplied) == (
        "620102", 100, D("2021-02-01"), 100)
    refused(ready, approve(), "invalid_state", "invalid_state.approval_recorded")
    refused(ready, approve("LA-2", dept="development_reform"), "forbidden")
    refused(ready, approve("LA-3", day="2021-03-03"), "invalid", "invalid.after_the_report")
    refused(ready, {**approve("LA-4"), "project_code": CODE}, "invalid", "invalid.not_about_a_project")
    refused(ready, approve("LA-5", area=0), "invalid", "invalid.not_positive")


def test_the_subject_of_an_approval_and_of_an_allocation_is_its_id() -> None:
    assert parse_envelope(approve("LA-7"), submitted_by="t").audit.subject == "LA-7"
    assert parse_envelope(adopt(allocation_id="AL-7"), submitted_by="t").audit.subject == "AL-7"


def test_land_supplied_from_an_approval_draws_on_its_unsupplied_area(ready: Ledger) -> None:
    accepted(ready, approve(area=30), land(20, approval_id="LA-1", start_by="2021-06-30"))
    approval = ready.get(approval_id_of("LA-1"))
    assert approval.unsupplied == 10 and approval.supplied == {"grant-land-1": 20}
    grant = project(ready).grants["grant-land-1"]
    assert (grant.detail["approval_id"], grant.detail["start_by"]) == ("LA-1", D("2021-06-30"))
    result = refused(ready, land(10.5, mid="grant-land-2", approval_id="LA-1"), "quota_exceeded",
                     "quota_exceeded.approval_unsupplied")
    assert result.detail_params == {"approval": "LA-1", "amount": Decimal("10.5"), "unsupplied": 10, "approved": 30}
    accepted(ready, land(10, mid="grant-land-3", approval_id="LA-1"))
    # A reclaim does not give the area back to the approval (it was supplied: 批而未供 is over).
    accepted(ready, reclaim("grant-land-1", dept="natural_resources"))
    assert ready.get(approval_id_of("LA-1")).unsupplied == 0


def test_land_supplied_without_start_by_keeps_none_the_planned_start(ready: Ledger) -> None:
    accepted(ready, land(5))
    grant = project(ready).grants["grant-land-1"]
    assert (grant.detail["approval_id"], grant.detail["start_by"]) == (None, None)


def test_land_supplied_from_an_approval_of_another_district_or_none_is_refused(ready: Ledger) -> None:
    accepted(ready, approve("LA-9", district="620103"), approve("LA-1", day="2021-03-02"))
    result = refused(ready, land(1, mid="l-1", approval_id="LA-9"), "invalid", "invalid.approval_elsewhere")
    assert result.detail_params["field"] == "payload.approval_id"
    refused(ready, land(1, mid="l-2", approval_id="LA-404"), "unknown_reference", "unknown_reference.no_approval")
    refused(ready, land(1, mid="l-3", approval_id="LA-1", when=at("2021-03-01")), "invalid",
            "invalid.before_the_approval")
    accepted(ready, land(1, mid="l-4", approval_id="LA-1"))


# --- project.amended ---------------------------------------------------------------------------


def test_an_amendment_changes_the_plan_from_its_day_on(ready: Ledger) -> None:
    accepted(ready, amend(when=MARCH, planned_start="2021-05-01", total_investment=15000))
    p = project(ready)
    assert (p.planned_start, p.registered_start, p.total_investment) == (D("2021-05-01"), D("2021-04-01"), 15000)
    assert p.amendments == [{"on": D("2021-03-02"), "reason": "征地拆迁滞后", "planned_start": D("2021-05-01"),
                             "total_investment": Decimal(15000)}]
    assert ready.project(CODE, as_of=D("2021-03-01")).planned_start == D("2021-04-01")


def test_an_amendment_is_refused_when_it_changes_nothing_or_ends_before_it_starts(ready: Ledger) -> None:
    refused(ready, amend(), "invalid", "invalid.nothing_amended")
    refused(ready, amend(planned_completion="2021-03-31"), "invalid", "invalid.before")
    refused(ready, amend(planned_start="2024-01-01"), "invalid", "invalid.before")
    refused(ready, amend(total_investment=0), "invalid", "invalid.not_positive")
    refused(ready, amend(planned_start="2021-05-01", dept="finance"), "forbidden")
    refused(ready, amend(planned_start="2021-05-01", code=OTHER), "unknown_project")
    accepted(ready, msg("project.cancelled", {"reason": "撤销"}))
    refused(ready, amend(planned_start="2021-05-01"), "closed_project")


def test_postponing_the_start_of_a_project_alerted_not_started_warns(ready: Ledger) -> None:
    accepted(ready, land(5))  # a factor received: from 30 days after 2021-04-01, not_started
    (quiet,) = accepted(ready, amend(when=at("2021-04-20"), planned_start="2021-04-25"))  # 19 days late: no alert
    assert quiet.warnings == ()
    (earlier,) = accepted(ready, amend(when=at("2021-06-01"), planned_start="2021-04-20"))  # not later: no warning
    assert earlier.warnings == ()
    (flagged,) = accepted(ready, amend(when=at("2021-06-02"), planned_start="2021-09-01", mid="postponed-1"))
    assert warnings_of(flagged) == ["postponed_after_alert"]
    assert flagged.warnings[0].reason.code == "postponed_after_alert.not_started"
    assert flagged.warnings[0].reason.params == {"project": CODE, "planned_start": "2021-04-20",
                                                 "postponed_to": "2021-09-01", "day": "2021-06-02"}
    shown = {e["message_id"]: e for e in (event_json(i) for i in ready.history(CODE))}
    assert [w["code"] for w in shown["postponed-1"]["warnings"]] == ["postponed_after_alert"]


def test_postponing_a_project_that_holds_no_factor_does_not_warn(ready: Ledger) -> None:
    (result,) = accepted(ready, amend(planned_start="2021-09-01"))
    assert result.warnings == ()


# --- the supervision case -----------------------------------------------------------------------


@pytest.fixture
def alerted(ready: Ledger) -> Ledger:
    """CODE with an issue overdue since 2021-02-01 (issue_overdue on 2021-03-02) and a land grant."""
    accepted(ready, issue(), land(10))
    return ready


def test_a_case_is_assigned_for_an_active_alert(alerted: Ledger) -> None:
    accepted(alerted, assign())
    case = project(alerted).cases["DB-1"]
    assert (case["rule"], case["grant_id"], case["responsible"], case["assigned_by"], case["assigned_on"],
            case["due_date"], case["closed_on"]) == ("issue_overdue", None, "natural_resources", "supervision_office",
                                                     D("2021-03-02"), D("2021-03-31"), None)
    assert alerted.get(case_number_id("DB-1")).project_code == CODE


def test_an_assignment_is_checked_in_the_contracts_order(alerted: Ledger) -> None:
    accepted(alerted, register(OTHER, district="620103"), assign())
    refused(alerted, assign("DB-2", dept="finance"), "forbidden")
    refused(alerted, assign("DB-2", code="2021-620102-48-01-009999"), "unknown_project")
    refused(alerted, assign("DB-1", code=OTHER), "invalid_state", "invalid_state.case_number_taken")
    result = refused(alerted, assign("DB-2", rule="idle"), "invalid", "invalid.not_a_choice")
    assert result.detail_params["field"] == "payload.rule"
    refused(alerted, assign("DB-2", due="2021-03-01"), "invalid", "invalid.due_before_assigned")
    refused(alerted, assign("DB-2", grant_id="nowhere"), "unknown_reference", "unknown_reference.no_grant_of_project")
    refused(alerted, assign("DB-2", rule="lagging"), "not_alerted", "not_alerted.rule")
    refused(alerted, assign("DB-2", grant_id="grant-land-1"), "not_alerted", "not_alerted.rule_for_grant")
    refused(alerted, assign("DB-2"), "invalid_state", "invalid_state.case_open")
    refused(alerted, msg("supervision.assigned", {**assign()["payload"], "case_id": "DB-3",
                                                  "responsible": "nobody"}), "invalid", "invalid.unknown_department")


def test_development_reform_assigns_too_and_an_alert_of_another_day_does_not_count(alerted: Ledger) -> None:
    refused(alerted, assign(when=at("2021-01-25")), "not_alerted")  # the issue was not yet overdue
    accepted(alerted, assign(dept="development_reform", when=at("2021-06-01"), due="2021-06-30"))


def test_a_case_is_answered_by_its_responsible_department_any_number_of_times(alerted: Ledger) -> None:
    accepted(alerted, assign(), respond(), respond(when=at("2021-03-12"), expected_by="2021-04-30"))
    responses = project(alerted).cases["DB-1"]["responses"]
    assert [(r["on"], r["expected_by"]) for r in responses] == [(D("2021-03-10"), D("2021-03-25")),
                                                                (D("2021-03-12"), D("2021-04-30"))]


def test_a_response_is_refused_from_another_department_for_another_case_or_dated_before_it(alerted: Ledger) -> None:
    accepted(alerted, register(OTHER, district="620103"), assign())
    refused(alerted, respond(dept="supervision_office"), "forbidden")
    refused(alerted, respond(dept="district:620102"), "forbidden")
    refused(alerted, respond(case_id="DB-404"), "unknown_reference", "unknown_reference.no_case")
    refused(alerted, respond(code=OTHER), "unknown_reference", "unknown_reference.no_case")
    refused(alerted, respond(expected_by="2021-03-01"), "invalid", "invalid.before_the_case")
    refused(alerted, respond(when=at("2021-03-01")), "invalid", "invalid.before_the_case")
    accepted(alerted, close("waived"))
    refused(alerted, respond(), "invalid_state", "invalid_state.case_closed")


def test_closed_as_rectified_only_once_the_alert_is_gone(alerted: Ledger) -> None:
    accepted(alerted, assign())
    refused(alerted, close("rectified"), "not_cleared", "not_cleared.still_alerted")
    accepted(alerted, msg("issue.resolved", {"issue_id": "I-9", "resolution": "已办结"}, dept="natural_resources",
                          at=at("2021-03-18")))
    (result,) = accepted(alerted, close("rectified"))
    assert result.warnings == ()
    assert project(alerted).cases["DB-1"]["outcome"] == "rectified"
    refused(alerted, close("waived"), "invalid_state", "invalid_state.case_closed")


def test_closed_as_reclaimed_only_after_a_grant_was_taken_back(alerted: Ledger) -> None:
    accepted(alerted, assign())
    refused(alerted, close("reclaimed"), "not_cleared", "not_cleared.nothing_reclaimed")
    # The open case (about no grant) lets development and reform take back a grant of the project (v1.2).
    accepted(alerted, reclaim("grant-land-1"))
    accepted(alerted, close("reclaimed"))
    assert pool(alerted, "620102", 2021, "land").remaining == 5000  # back in the district's pool


def test_a_grant_reclaimed_before_the_case_does_not_close_it(alerted: Ledger) -> None:
    accepted(alerted, reclaim("grant-land-1", dept="natural_resources", when=at("2021-03-01")), assign())
    refused(alerted, close("reclaimed"), "not_cleared", "not_cleared.nothing_reclaimed")


def test_a_case_of_a_grant_is_closed_as_reclaimed_only_by_that_grant(alerted: Ledger) -> None:
    accepted(alerted, land(5, mid="grant-land-2"))
    grant_case(alerted, "DB-G", "land_idle", "grant-land-1")
    accepted(alerted, reclaim("grant-land-2", dept="natural_resources"))
    refused(alerted, close("reclaimed", case_id="DB-G", dept="development_reform"), "not_cleared",
            "not_cleared.grant_not_reclaimed")
    accepted(alerted, reclaim("grant-land-1"), close("reclaimed", case_id="DB-G", dept="development_reform"))


def test_a_waived_case_is_closed_with_a_warning(alerted: Ledger) -> None:
    accepted(alerted, assign())
    (result,) = accepted(alerted, close("waived"))
    assert warnings_of(result) == ["supervision_waived"]
    assert result.warnings[0].reason.params == {"case": "DB-1", "rule": "issue_overdue", "project": CODE}


def test_only_the_assigning_department_closes_a_case(alerted: Ledger) -> None:
    accepted(alerted, assign(dept="development_reform"))
    refused(alerted, close("waived", dept="supervision_office"), "forbidden")
    refused(alerted, close("waived", dept="natural_resources"), "forbidden")
    refused(alerted, close("waived", dept="development_reform", when=at("2021-03-01")), "invalid",
            "invalid.before_the_case")
    accepted(alerted, close("waived", dept="development_reform"))


def grant_case(ledger: Ledger, case_id: str, rule: str, grant_id: str) -> None:
    """A case about one grant, assigned on 2021-03-02 (straight on the aggregate: the factor-level alerts that
    let a message assign one are the read side's rules, tested with them)."""
    p = ledger.load_many([project_id(CODE)])[project_id(CODE)]  # as the ledger holds it between batches
    first = next(iter(ledger.history(CODE))).event.audit  # type: ignore[attr-defined]
    audit = replace(first, message_id=f"assign-{case_id}", message_type="supervision.assigned",
                    department="development_reform", occurred_at=first.occurred_at.replace(month=3, day=2))
    p.assign_supervision(case_id, rule, grant_id, "natural_resources", D("2021-03-31"), "限期开工", audit)
    ledger.save(p, CaseNumber(case_id=case_id, project_code=CODE, audit=audit))


# --- factor.reclaimed by development and reform (decision 4) ------------------------------------


def test_development_reform_reclaims_another_units_grant_only_for_an_open_case(alerted: Ledger) -> None:
    accepted(alerted, land(5, mid="grant-land-2"))
    refused(alerted, reclaim("grant-land-1"), "forbidden", "forbidden.no_open_case")
    grant_case(alerted, "DB-G", "land_idle", "grant-land-2")  # a case naming another grant
    refused(alerted, reclaim("grant-land-1"), "forbidden", "forbidden.no_open_case")
    accepted(alerted, reclaim("grant-land-2"))
    assert pool(alerted, "620102", 2021, "land").remaining == 4990


def test_a_closed_case_no_longer_lets_development_reform_reclaim(alerted: Ledger) -> None:
    accepted(alerted, assign(), close("waived"))
    refused(alerted, reclaim("grant-land-1"), "forbidden", "forbidden.no_open_case")
    accepted(alerted, reclaim("grant-land-1", dept="natural_resources"))  # the grantor still may


def test_development_reform_reclaims_its_own_grants_as_before(ready: Ledger) -> None:
    accepted(ready, msg("quota.set", {"district": "620102", "year": 2021, "factor": "energy", "amount": 100},
                        code=None), msg("energy.granted", {"tce": 40, "year": 2021}, mid="grant-energy-1"))
    accepted(ready, reclaim("grant-energy-1", factor="energy"))
    assert pool(ready, "620102", 2021, "energy").remaining == 100


# --- special-bond quotas --------------------------------------------------------------------------


def bond_ready(ledger: Ledger) -> None:
    accepted(ledger, msg("project.admitted", {"library": "special_bond"}),
             msg("bond.evaluated", {"kind": "financial", "evaluator": "e", "passed": True}, dept="finance"),
             msg("bond.evaluated", {"kind": "legal", "evaluator": "e", "passed": True}, dept="finance"))


def bond_quota(amount: float, dept: str = "finance") -> dict[str, Any]:
    return msg("quota.set", {"district": "620102", "year": 2021, "factor": "special_bond", "amount": amount},
               code=None, dept=dept)


def test_special_bond_funds_draw_on_the_districts_bond_quota_where_there_is_one(ready: Ledger) -> None:
    bond_ready(ready)
    accepted(ready, funds(500, mid="bond-0", source="special_bond"))  # no bond quota for 2021: no cap
    refused(ready, bond_quota(100, dept="development_reform"), "forbidden", "forbidden.quota")
    accepted(ready, bond_quota(100))
    accepted(ready, funds(60, mid="bond-1", source="special_bond"))
    result = refused(ready, funds(41, mid="bond-2", source="special_bond"), "quota_exceeded",
                     "quota_exceeded.bond_quota")
    assert result.detail_params == {"amount": 41, "district": "620102", "year": 2021, "remaining": 40, "quota": 100}
    accepted(ready, funds(1000, mid="own-1"))  # other sources are not capped by it
    accepted(ready, reclaim("bond-1", factor="funds", dept="finance"))  # what is reclaimed goes back
    assert pool(ready, "620102", 2021, "special_bond").remaining == 100
    accepted(ready, funds(100, mid="bond-3", source="special_bond"))


# --- allocation.adopted ---------------------------------------------------------------------------


def test_an_allocation_raises_each_districts_pool_by_its_share(ready: Ledger) -> None:
    (result,) = accepted(ready, adopt([{"district": "620102", "amount": 60}, {"district": "620103", "amount": 40},
                                       {"district": "620104", "amount": 0}]))
    assert result.warnings == ()
    assert pool(ready, "620102", 2022, "land").quota == 110  # 50 set before, and its share
    assert pool(ready, "620103", 2022, "land").quota == 40  # created with its share
    assert pool(ready, "620104", 2022, "land") is None  # a share of nothing changes nothing
    allocation = ready.get(allocation_id_of("AL-1"))
    assert (allocation.total, allocation.as_of, allocation.advice) == (100, D("2021-03-02"), None)
    assert allocation.shares == [{"district": "620102", "amount": 60}, {"district": "620103", "amount": 40},
                                 {"district": "620104", "amount": 0}]


def test_an_allocation_is_refused_when_its_shares_do_not_add_up_or_its_id_is_taken(ready: Ledger) -> None:
    result = refused(ready, adopt(total=101), "invalid", "invalid.shares_sum")
    assert result.detail_params == {"field": "payload.shares", "sum": 100, "total": 101}
    result = refused(ready, adopt([{"district": "620102", "amount": 50}, {"district": "620102", "amount": 50}]),
                     "invalid", "invalid.duplicate_district")
    assert result.detail_params["field"] == "payload.shares[1].district"
    refused(ready, adopt(as_of="2021-03-03"), "invalid", "invalid.after_the_report")
    refused(ready, adopt(dept="finance"), "forbidden")
    refused(ready, adopt(factor="energy"), "forbidden")
    accepted(ready, adopt())
    refused(ready, adopt(), "invalid_state", "invalid_state.allocation_adopted")
    assert pool(ready, "620102", 2022, "land").quota == 110


@pytest.fixture
def advised() -> Iterator[tuple[Ledger, list[tuple[int, str, Decimal, date]]]]:
    asked: list[tuple[int, str, Decimal, date]] = []

    def advisor(year: int, factor: str, total: Decimal, as_of: date) -> list[tuple[str, Decimal]] | None:
        asked.append((year, factor, total, as_of))
        return [("620102", total * Decimal("0.595")), ("620103", total * Decimal("0.405"))]

    ledger = build_ledger(Settings(store="memory://"), advisor=advisor)
    yield ledger, asked
    ledger.close()


def test_an_allocation_within_one_percent_of_the_advice_keeps_none(advised: tuple[Ledger, list[Any]]) -> None:
    ledger, asked = advised
    (result,) = accepted(ledger, adopt(as_of="2021-02-28"))  # 60 / 40 against 59.5 / 40.5
    assert result.warnings == ()
    assert asked == [(2022, "land", Decimal(100), D("2021-02-28"))]
    assert ledger.get(allocation_id_of("AL-1")).advice is None


def test_an_allocation_departing_from_the_advice_warns_and_keeps_it(advised: tuple[Ledger, list[Any]]) -> None:
    ledger, _ = advised
    (result,) = accepted(ledger, adopt([{"district": "620102", "amount": 70}, {"district": "620103", "amount": 30}],
                                       mid="deviates-1"))
    assert warnings_of(result) == ["allocation_deviates"]
    assert result.warnings[0].reason.params["district"] in ("620102", "620103")
    assert ledger.get(allocation_id_of("AL-1")).advice == [{"district": "620102", "share": Decimal("59.5")},
                                                           {"district": "620103", "share": Decimal("40.5")}]
    (stored,) = [i for i in ledger.feed(0, 1000).items if i.event is not None
                 and getattr(i.event, "audit", None) and i.event.audit.message_id == "deviates-1"
                 and type(i.event).__qualname__ == "Allocation.Adopted"]
    assert [w.code for w in stored.event.audit.warnings] == ["allocation_deviates"]


def test_the_deviation_counts_a_district_missing_from_either_side() -> None:
    shares = (AllocationShare("620102", Decimal(100)),)
    assert deviation_from(shares, [("620102", Decimal(98)), ("620103", Decimal(2))]) == (
        "620102", Decimal(100), Decimal(98), Decimal(2))
    assert deviation_from((), []) is None


# --- the shares parser ------------------------------------------------------------------------------


def with_shares(shares: Any) -> dict[str, Any]:
    body = adopt()
    body["payload"]["shares"] = shares
    return body


def shares_field(shares: Any) -> tuple[str, str]:
    with pytest.raises(Rejection) as refused_:
        parse_envelope(with_shares(shares), submitted_by="t")
    return refused_.value.detail.code, refused_.value.detail.params["field"]


def test_the_shares_are_checked_item_by_item_with_their_place() -> None:
    assert shares_field("620102") == ("invalid.not_a_list", "payload.shares")
    assert shares_field([]) == ("invalid.empty_list", "payload.shares")
    assert shares_field([{"district": "620102", "amount": 1}] * (MAX_ITEMS + 1)) == (
        "invalid.too_many_items", "payload.shares")
    assert shares_field([{"district": "620102", "amount": 1}, 7]) == ("invalid.item_not_an_object", "payload.shares[1]")
    assert shares_field([{"district": "620102", "amount": 1, "note": "x"}]) == (
        "invalid.unknown_fields", "payload.shares[0]")
    assert shares_field([{"district": "620102"}]) == ("invalid.field_missing", "payload.shares[0].amount")
    assert shares_field([{"district": "620102", "amount": 1}, {"district": "620199", "amount": 1}]) == (
        "invalid.not_a_choice", "payload.shares[1].district")
    assert shares_field([{"district": "620102", "amount": 1}, {"district": "620103", "amount": 1},
                         {"district": "620104", "amount": -1}]) == ("invalid.negative", "payload.shares[2].amount")
    assert shares_field([{"district": "620102", "amount": "5"}]) == ("invalid.not_a_number", "payload.shares[0].amount")


JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=6)
SHARE = st.fixed_dictionaries({"district": st.sampled_from(["620102", "620103", "620199", "", 620102]),
                               "amount": st.one_of(st.integers(-3, 50), st.floats(allow_nan=False), st.text(max_size=3))},
                              optional={"extra": JSON})


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, st.lists(st.one_of(SHARE, JSON), max_size=6)))
def test_any_shares_parse_or_are_refused_as_invalid_at_their_place(shares: Any) -> None:
    try:
        envelope = parse_envelope(with_shares(shares), submitted_by="t")
    except Rejection as rejection:
        assert rejection.code == "invalid"
        assert str(rejection.detail.params["field"]).startswith("payload.shares" if shares is not None else "payload")
        return
    parsed = envelope.command.shares  # type: ignore[attr-defined]
    assert len(parsed) == len(shares) and all(s.amount >= 0 for s in parsed)


# --- Kafka keys (decision 9) -------------------------------------------------------------------------


def test_an_approval_is_keyed_by_its_district_and_an_allocation_by_the_city() -> None:
    assert district_key(approve(district="620104")) == b"620104"
    assert district_key(adopt()) == b"620100"
    for body in (amend(planned_start="2021-05-01"), assign(), respond(), close("waived"), disburse(1)):
        assert district_key(body) == b"620102"  # messages about a project: its district, as before


#: Each v1.2 message type is accepted with its effect above (tests/unit/test_rules.py counts them in).
V12_TYPES = frozenset({"funds.disbursed", "land.approved", "project.amended", "supervision.assigned",
                       "supervision.responded", "supervision.closed", "allocation.adopted"})
