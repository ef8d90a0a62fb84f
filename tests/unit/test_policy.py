"""The v1.1 policies through the pipeline: libraries that gate, the rules on years and bonds, re-escalation,
and the priorities that warn (accepted, flagged, and stored with the event)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.policy import PRIORITIES, RULES, WARNING_CODES
from domain.reference import FUND_LIBRARIES
from infra.presenter import event_json
from service.ledger import Ledger
from tests.conftest import submit
from tests.portal import CODE, admitted, energy_quota, msg


def results(ledger: Ledger, *bodies: dict[str, Any]) -> list[tuple[str, str | None, tuple[str, ...]]]:
    return [(r.status, r.code, tuple(w.code for w in r.warnings)) for r in submit(ledger, *bodies)]


def funds(source: str, **more: Any) -> dict[str, Any]:
    return msg("funds.allocated", {"source": source, "amount": 10}, dept="finance", **more)


def test_every_policy_has_its_code() -> None:
    assert all(code in WARNING_CODES for checks in PRIORITIES.values() for code, _ in checks)
    assert {code for checks in RULES.values() for code, _ in checks} == {"not_in_library", "bond_not_eligible",
                                                                           "invalid"}


@pytest.mark.parametrize("source,library", sorted(FUND_LIBRARIES.items()))
def test_funds_from_a_source_with_a_library_need_that_library(memory_ledger: Ledger, source: str,
                                                              library: str) -> None:
    submit(memory_ledger, *admitted(CODE, revenue_generating=source != "general_bond"))
    assert results(memory_ledger, funds(source))[0][:2] == ("rejected", "not_in_library")
    submit(memory_ledger, msg("project.admitted", {"library": library}),
           msg("bond.evaluated", {"kind": "financial", "evaluator": "e", "passed": True}, dept="finance"),
           msg("bond.evaluated", {"kind": "legal", "evaluator": "e", "passed": True}, dept="finance"))
    assert results(memory_ledger, funds(source))[0][0] == "accepted"


def test_funds_from_sources_without_a_library_need_only_admission(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE))
    assert [r[0] for r in results(memory_ledger, funds("bank_loan"), funds("own_funds"))] == ["accepted"] * 2


def test_general_bonds_are_for_projects_without_revenue(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE, "general_bond", revenue_generating=True))
    assert results(memory_ledger, funds("general_bond"))[0][:2] == ("rejected", "bond_not_eligible")


def test_pitches_to_investors_only_from_the_attraction_library(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE))
    pitch = msg("investment.pitched", {"event": "兰洽会", "date": "2021-03-01"}, dept="investment_promotion")
    assert results(memory_ledger, pitch)[0][:2] == ("rejected", "not_in_library")
    submit(memory_ledger, msg("project.admitted", {"library": "investment_attraction"}))
    assert results(memory_ledger, {**pitch, "message_id": "pitch-2"})[0][0] == "accepted"
    late = msg("investment.pitched", {"event": "x", "date": "2021-03-02"}, dept="investment_promotion")
    assert results(memory_ledger, late)[0][:2] == ("rejected", "invalid")  # dated after its report


def test_the_annual_library_needs_a_year(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE))
    assert results(memory_ledger, msg("project.admitted", {"library": "annual"}))[0][:2] == ("rejected", "invalid")


def test_no_report_for_a_month_not_over(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE))
    report = lambda period: msg("investment.reported", {"period": period, "completed": 1},  # noqa: E731
                                dept="statistics", at="2021-03-01T09:00:00+08:00")
    assert [r[:2] for r in results(memory_ledger, report("2021-04"), report("2021-03"), report("2021-02"))] == [
        ("rejected", "invalid"), ("accepted", None), ("accepted", None)]


def issue(level: str, due: str, issue_id: str = "I-1", **more: Any) -> dict[str, Any]:
    return msg("issue.escalated", {"issue_id": issue_id, "title": "征地", "level": level,
                                   "assigned_to": "natural_resources", "due_date": due}, dept="transport", **more)


def test_an_open_issue_escalated_higher_takes_the_new_level(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE))
    assert results(memory_ledger, issue("district", "2021-04-30"))[0][0] == "accepted"
    assert results(memory_ledger, issue("district", "2021-05-30"))[0][:2] == ("rejected", "invalid_state")
    assert results(memory_ledger, issue("city", "2021-06-30", at="2021-04-10T09:00:00+08:00"))[0][0] == "accepted"
    project = memory_ledger.project(CODE)
    assert project is not None
    current = project.issues["I-1"]
    assert (current["level"], str(current["due_date"]), str(current["escalated_on"])) == ("city", "2021-06-30",
                                                                                          "2021-03-01")
    assert [lv["level"] for lv in current["levels"]] == ["district", "city"]
    assert results(memory_ledger, issue("department", "2021-07-30"))[0][:2] == ("rejected", "invalid_state")
    trail = [event_json(i) for i in memory_ledger.history(CODE) if i.event.__class__.__name__ == "IssueEscalated"]
    assert [t["data"]["level"] for t in trail] == ["district", "city"]  # the history shows each level
    submit(memory_ledger, msg("issue.resolved", {"issue_id": "I-1", "resolution": "ok"}, dept="natural_resources"))
    assert results(memory_ledger, issue("province", "2021-08-30"))[0][:2] == ("rejected", "invalid_state")


@pytest.mark.parametrize("priority,has_central,warned", [
    ("none", False, True), ("none", True, False), ("municipal", False, False), ("provincial", False, False)])
def test_budget_priority(memory_ledger: Ledger, priority: str, has_central: bool, warned: bool) -> None:
    submit(memory_ledger, *admitted(CODE, "municipal_budget", "central_budget", priority=priority))
    if has_central:
        submit(memory_ledger, funds("provincial_budget"))
    assert results(memory_ledger, funds("municipal_budget"))[0] == (
        "accepted", None, ("budget_priority",) if warned else ())


@pytest.mark.parametrize("stages,warned", [((), True), (("generation",), True), (("generation", "approval"), False)])
def test_started_before_approval(memory_ledger: Ledger, stages: tuple[str, ...], warned: bool) -> None:
    submit(memory_ledger, *admitted(CODE), *(msg("stage.advanced", {"stage": s}) for s in stages))
    assert results(memory_ledger, msg("construction.started", {"date": "2021-03-01"}))[0] == (
        "accepted", None, ("started_before_approval",) if warned else ())


@pytest.mark.parametrize("nature,exempt,warned", [
    (None, True, True), ("epidemic_supplies", True, False), (None, False, False)])
def test_exemption_unverified(memory_ledger: Ledger, nature: str | None, exempt: bool, warned: bool) -> None:
    submit(memory_ledger, *admitted(CODE, **({"nature": nature} if nature else {})), energy_quota(100))
    # v1.2: an exemption only for a year of the 十三五 assessment (up to 2020).
    grant = msg("energy.granted", {"tce": 10, "year": 2020 if exempt else 2021, "exempt": exempt})
    assert results(memory_ledger, grant)[0] == ("accepted", None, ("exemption_unverified",) if warned else ())


def test_warnings_are_in_the_result_and_stored_with_the_event(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE, "municipal_budget"))
    (result,) = submit(memory_ledger, funds("municipal_budget", mid="flagged-1"))
    assert result.as_json()["warnings"][0]["code"] == "budget_priority" and result.as_json()["warnings"][0]["reason"]
    shown = [event_json(i) for i in memory_ledger.history(CODE)]
    flagged = next(e for e in shown if e["message_id"] == "flagged-1")
    assert [w["code"] for w in flagged["warnings"]] == ["budget_priority"]
    assert all(e["warnings"] == [] for e in shown if e["message_id"] != "flagged-1")
