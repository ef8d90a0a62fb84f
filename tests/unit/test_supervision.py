"""The supervision rules as pure functions of facts and a date (no store involved)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.alerts import AlertChange, SedimentationAlerts, alert_changes, alerts_id, approval_alerts_id, told_state
from domain.supervision import (
    FACTOR_RULES,
    RULES,
    ApprovalFact,
    CaseFact,
    GrantFact,
    IssueFact,
    PlanFact,
    ProjectFacts,
    ReductionFact,
    ReportFact,
    Thresholds,
    evaluate,
    evaluate_approval,
    months_due,
    whole_months,
)
from domain.texts import Detail
from infra.catalogue import name_of, said
from infra.settings import Settings

D = date.fromisoformat
BASE = ProjectFacts(code="2021-620102-48-01-000001", name="p", district="620102", registered_on=D("2021-01-10"),
                    planned_start=D("2021-03-01"), grants=(GrantFact("g1", "data", D("2021-02-01")),))
# A factor no factor-level rule watches (v1.2: land, energy and funds raise alerts of their own).


def only(facts: ProjectFacts, as_of: str, t: Thresholds = Thresholds()) -> list[tuple[str, str, date]]:
    return [(a.rule, a.level, a.since) for a in evaluate(facts, D(as_of), t)]


@pytest.mark.parametrize("as_of,expected", [
    ("2021-03-31", []),                                         # 30 days late: not yet
    ("2021-04-01", [("not_started", "yellow", D("2021-04-01"))]),  # 31 days: yellow
    ("2021-05-30", [("not_started", "yellow", D("2021-04-01"))]),  # 90 days: still yellow
    ("2021-05-31", [("not_started", "red", D("2021-05-31"))]),     # 91 days: red
])
def test_not_started_thresholds(as_of: str, expected: list) -> None:
    assert only(BASE, as_of) == expected


def test_not_started_needs_a_factor_received_reclaimed_or_not() -> None:
    assert only(BASE.__class__(**{**BASE.__dict__, "grants": ()}), "2021-06-30") == []
    reclaimed = GrantFact("g1", "data", D("2021-02-01"), reclaimed_on=D("2021-06-01"))
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (reclaimed,)})
    assert only(facts, "2021-05-31") == [("not_started", "red", D("2021-05-31"))]
    # v1.1: a factor taken and reclaimed still counts: the start did not follow it.
    assert only(facts, "2021-06-01") == [("not_started", "red", D("2021-05-31"))]


def test_a_factor_granted_late_raises_the_alert_from_that_day() -> None:
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (GrantFact("g", "funds", D("2021-04-20")),)})
    assert only(facts, "2021-05-01") == [("not_started", "yellow", D("2021-04-20"))]


def test_a_late_report_of_an_early_start_clears_only_from_the_start() -> None:
    facts = ProjectFacts(**{**BASE.__dict__, "started_on": D("2021-04-15")})
    assert only(facts, "2021-04-14") == [("not_started", "yellow", D("2021-04-01"))]
    assert only(facts, "2021-04-15") == []


def test_thresholds_are_configurable() -> None:
    t = Thresholds(start_yellow_days=5, start_red_days=10)
    assert only(BASE, "2021-03-07", t) == [("not_started", "yellow", D("2021-03-07"))]
    assert only(BASE, "2021-03-12", t) == [("not_started", "red", D("2021-03-12"))]


def started(reports: dict[str, int], planned: int = 1200) -> ProjectFacts:
    """Reports made on the last day of their month (on time)."""
    return ProjectFacts(**{**BASE.__dict__, "started_on": D("2021-01-15"),
                           "plans": (PlanFact(2021, Decimal(planned), D("2021-01-10")),),
                           "reports": tuple(ReportFact(k, Decimal(v), month_end(k)) for k, v in reports.items())})


def month_end(period: str) -> date:
    year, month = map(int, period.split("-"))
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


# v1.2: a month counts in the target once its report is due, 10 days after its end by default.
@pytest.mark.parametrize("reports,as_of,expected", [
    ({"2021-01": 100, "2021-02": 100, "2021-03": 100}, "2021-03-31", []),          # on plan
    ({"2021-01": 100, "2021-02": 100, "2021-03": 100}, "2021-03-30", []),          # 2 months: 16.7 % each
    # 16.7 % done: 8.3 points behind once March is due, 16.7 once April is (May 10) → yellow from then
    ({"2021-01": 100, "2021-02": 100}, "2021-04-30", []),
    ({"2021-01": 100, "2021-02": 100}, "2021-05-09", []),
    ({"2021-01": 100, "2021-02": 100}, "2021-05-10", [("lagging", "yellow", D("2021-05-10"))]),
    # 0.8 % done: yellow once February is due (March 10), red (32.5 points) once April is (May 10)
    ({"2021-01": 10}, "2021-05-31", [("lagging", "red", D("2021-05-10"))]),
    ({"2021-01": 10}, "2021-04-29", [("lagging", "yellow", D("2021-03-10"))]),
])
def test_lagging(reports: dict, as_of: str, expected: list) -> None:
    assert only(started(reports), as_of) == expected


def test_lagging_yellow_at_exactly_ten_points_red_beyond_thirty() -> None:
    # 3 months due: expected 25 %; 180/1200 = 15 % → gap 10 → yellow.
    assert only(started({"2021-01": 180}), "2021-04-10")[0][:2] == ("lagging", "yellow")
    # gap exactly 30 is yellow; just beyond is red.
    assert only(started({"2021-01": 60}, planned=1200), "2021-05-10")[0][:2] == ("lagging", "yellow")  # 33.3-5=28.3
    assert only(started({}, planned=1200), "2021-05-10")[0][:2] == ("lagging", "red")  # 33.3


def test_a_report_counts_from_the_day_it_was_made() -> None:
    late = ProjectFacts(**{**started({}).__dict__, "reports": (
        ReportFact("2021-01", Decimal(50), D("2021-01-31")), ReportFact("2021-02", Decimal(50), D("2021-02-28")),
        ReportFact("2021-03", Decimal(200), D("2021-04-15")))})
    assert only(late, "2021-04-10") == [("lagging", "yellow", D("2021-04-10"))]  # March due: 8.3 % done of 25 %
    assert only(late, "2021-04-15") == []  # the March report arrives: 25 % of 25 %


def test_a_later_report_corrects_a_month_from_its_day() -> None:
    corrected = ProjectFacts(**{**started({}).__dict__, "reports": (
        ReportFact("2021-01", Decimal(100), D("2021-01-31")), ReportFact("2021-01", Decimal(0), D("2021-03-15")))})
    assert only(corrected, "2021-03-14") == []  # February due: 8.3 % done of 16.7 %
    assert only(corrected, "2021-03-15") == [("lagging", "yellow", D("2021-03-15"))]  # corrected to nothing


def test_whole_months() -> None:
    assert [whole_months(D(d)) for d in ("2021-01-31", "2021-02-01", "2021-12-30", "2021-12-31")] == [1, 1, 11, 12]


def test_a_month_counts_once_its_report_is_due() -> None:
    days = ("2021-01-31", "2021-02-09", "2021-02-10", "2021-12-09", "2021-12-10", "2021-12-31", "2022-01-10")
    assert [months_due(D(d), 10) for d in days] == [0, 0, 1, 10, 11, 11, 0]
    assert [months_due(D(d), 0) for d in days] == [whole_months(D(d)) for d in days]  # due at the month's end


def test_a_project_that_reports_on_time_at_pace_is_never_behind() -> None:
    """90 % of the plan's pace, each month reported on the 5th of the next (before it is due): never
    lagging. Counting a month from its end made it 10 points behind at every month's end."""
    steady = ProjectFacts(**{**started({}).__dict__, "reports": tuple(
        ReportFact(f"2021-{m:02d}", Decimal(90), month_end(f"2021-{m:02d}") + timedelta(days=5)) for m in range(1, 12))})
    behind = [day for day in (D("2021-01-01") + timedelta(days=n) for n in range(365))
              if any(a.rule == "lagging" for a in evaluate(steady, day))]
    assert behind == []
    assert only(steady, "2021-03-31", Thresholds(report_due_days=0)) == [("lagging", "yellow", D("2021-03-31"))]


def test_the_report_due_days_are_configurable() -> None:
    facts = started({"2021-01": 100, "2021-02": 100})
    assert only(facts, "2021-05-04", Thresholds(report_due_days=3)) == [("lagging", "yellow", D("2021-05-03"))]
    assert only(facts, "2021-05-04", Thresholds(report_due_days=5)) == []


def test_issue_overdue() -> None:
    issue = IssueFact("I-1", "征地", ((D("2021-04-01"), D("2021-04-30")),))
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (), "issues": (issue,)})
    assert only(facts, "2021-04-30") == []
    assert only(facts, "2021-05-01") == [("issue_overdue", "yellow", D("2021-05-01"))]
    assert only(facts, "2021-05-29") == [("issue_overdue", "yellow", D("2021-05-01"))]
    assert only(facts, "2021-05-30") == [("issue_overdue", "red", D("2021-05-30"))]  # 30 days after
    resolved = ProjectFacts(**{**facts.__dict__, "issues": (IssueFact(**{**issue.__dict__, "resolved_on": D("2021-05-10")}),)})
    assert only(resolved, "2021-05-09") == [("issue_overdue", "yellow", D("2021-05-01"))]
    assert only(resolved, "2021-05-10") == []


def test_an_issue_escalated_again_is_due_on_its_new_date_from_that_day() -> None:
    issue = IssueFact("I-1", "征地", ((D("2021-04-01"), D("2021-04-30")), (D("2021-05-20"), D("2021-07-31"))))
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (), "issues": (issue,)})
    assert only(facts, "2021-05-19") == [("issue_overdue", "yellow", D("2021-05-01"))]  # the first due date
    assert only(facts, "2021-05-20") == []  # taken to the city, with more time
    assert only(facts, "2021-08-01") == [("issue_overdue", "yellow", D("2021-08-01"))]


def test_reduction_overdue() -> None:
    reduction = ReductionFact("RD-1", due_date=D("2021-06-30"))
    advance = GrantFact("g2", "emission", D("2021-03-01"), reduction_id="RD-1")
    facts = ProjectFacts(**{**BASE.__dict__, "started_on": D("2021-02-01"), "grants": (advance,),
                            "reductions": {"RD-1": reduction}})
    assert only(facts, "2021-06-29") == []
    assert only(facts, "2021-06-30") == [("reduction_overdue", "red", D("2021-06-30"))]  # red from the due date
    assert only(facts, "2021-07-01") == [("reduction_overdue", "red", D("2021-06-30"))]
    done = ProjectFacts(**{**facts.__dict__, "reductions": {"RD-1": ReductionFact("RD-1", D("2021-06-30"), D("2021-07-05"))}})
    assert only(done, "2021-07-05") == []
    early = ProjectFacts(**{**facts.__dict__, "completed_on": D("2021-05-01")})
    assert only(early, "2021-04-30") == []
    assert only(early, "2021-05-01") == [("reduction_overdue", "red", D("2021-05-01"))]  # the earlier of the two


def test_alerts_name_the_department_and_the_leader_of_their_day() -> None:
    leaders = (GrantFact("t1", "talent", D("2021-02-01"), leader="王副市长"),
               GrantFact("t2", "talent", D("2021-05-01"), reclaimed_on=D("2021-06-01"), leader="李局长"))
    facts = ProjectFacts(**{**BASE.__dict__, "department": "transport", "grants": (*BASE.grants, *leaders)})
    on = lambda day: [(a.department, a.leader) for a in evaluate(facts, D(day))]  # noqa: E731
    assert on("2021-04-15") == [("transport", "王副市长")]
    assert on("2021-05-15") == [("transport", "李局长")]  # the last one assigned
    assert on("2021-06-15") == [("transport", "王副市长")]  # and when that one is withdrawn, the one before
    assert [(a.department, a.leader) for a in evaluate(ProjectFacts(**{**BASE.__dict__, "department": "x"}),
                                                       D("2021-04-15"))] == [("x", None)]


def test_closed_projects_raise_no_start_or_progress_alerts() -> None:
    cancelled = ProjectFacts(**{**BASE.__dict__, "cancelled_on": D("2021-05-01")})
    assert only(cancelled, "2021-04-30") == [("not_started", "yellow", D("2021-04-01"))]
    assert only(cancelled, "2021-06-30") == []


def test_nothing_before_registration() -> None:
    assert only(BASE, "2021-01-09") == []
    assert evaluate(BASE, D("2021-01-09") - timedelta(days=1)) == []


# --- v1.2: the factor-level rules --------------------------------------------------------------------

def rule_of(facts: ProjectFacts, rule: str, as_of: str, t: Thresholds = Thresholds()) -> list[tuple]:
    return [(a.level, a.since, a.ref, a.grant_id, a.factor, a.reclaimable, a.case_id)
            for a in evaluate(facts, D(as_of), t) if a.rule == rule]


FUNDS = GrantFact("f1", "funds", D("2021-01-01"), quantity=Decimal(100))
STARTED = ProjectFacts(**{**BASE.__dict__, "started_on": D("2021-02-01"), "grants": ()})


@pytest.mark.parametrize("disbursed,as_of,expected", [
    ((), "2021-04-01", []),                                                     # 90 days: not yet
    ((), "2021-04-02", [("yellow", D("2021-04-02"))]),                            # 91 days: yellow
    ((), "2021-06-30", [("yellow", D("2021-04-02"))]),                            # 180 days: still yellow
    ((), "2021-07-01", [("red", D("2021-07-01"))]),                               # 181 days: more than 180
    (((D("2021-02-01"), Decimal(49)),), "2021-05-01", [("yellow", D("2021-04-02"))]),  # less than half
    (((D("2021-02-01"), Decimal(50)),), "2021-05-01", []),                        # half disbursed: none
    (((D("2021-05-01"), Decimal(60)),), "2021-04-30", [("yellow", D("2021-04-02"))]),  # paid from its date on
    (((D("2021-05-01"), Decimal(60)),), "2021-05-01", []),
])
def test_funds_idle(disbursed: tuple, as_of: str, expected: list) -> None:
    facts = ProjectFacts(**{**STARTED.__dict__, "grants": (replace(FUNDS, disbursed=disbursed),)})
    assert [(level, since) for level, since, *_ in rule_of(facts, "funds_idle", as_of)] == expected
    assert all(ref == grant == "f1" and factor == "funds" and not reclaimable
               for _, _, ref, grant, factor, reclaimable, _ in rule_of(facts, "funds_idle", as_of))


def test_a_reclaimed_grant_raises_no_factor_level_alert() -> None:
    taken = [replace(FUNDS, reclaimed_on=D("2021-05-01")),
             GrantFact("l1", "land", D("2021-02-01"), D("2021-05-01"), quantity=Decimal(10)),
             GrantFact("e1", "energy", D("2020-01-01"), D("2022-05-01"), quantity=Decimal(10))]
    facts = ProjectFacts(**{**BASE.__dict__, "grants": tuple(taken)})
    assert {a.rule for a in evaluate(facts, D("2021-04-30"))} >= {"funds_idle", "land_idle", "energy_idle"}
    assert {a.rule for a in evaluate(facts, D("2021-05-01"))} & {"funds_idle", "land_idle"} == set()
    assert [a.rule for a in evaluate(facts, D("2022-05-01")) if a.rule == "energy_idle"] == []


LAND = GrantFact("l1", "land", D("2021-02-01"), quantity=Decimal(30), start_by=D("2021-06-30"))


@pytest.mark.parametrize("as_of,expected", [
    ("2021-06-30", []),                                                      # the agreed day itself: not yet
    ("2021-07-01", [("yellow", D("2021-07-01"), False)]),                     # from the day after start_by
    ("2022-06-30", [("yellow", D("2021-07-01"), False)]),                     # 365 days after
    ("2022-07-01", [("red", D("2022-07-01"), False)]),                        # 闲置土地: more than a year
    ("2023-06-30", [("red", D("2022-07-01"), False)]),
    ("2023-07-01", [("red", D("2022-07-01"), True)]),                         # reclaimable after two years
])
def test_land_idle(as_of: str, expected: list) -> None:
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (LAND,)})
    assert [(level, since, reclaimable) for level, since, _, _, _, reclaimable, _ in
            rule_of(facts, "land_idle", as_of)] == expected


def test_land_idle_without_start_by_follows_the_planned_start_in_force_when_supplied() -> None:
    supplied = replace(LAND, start_by=None)
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (supplied,),
                            "start_amendments": ((D("2021-01-20"), D("2021-04-01")), (D("2021-03-01"), D("2021-09-01")))})
    assert rule_of(facts, "land_idle", "2021-04-02") == [
        ("yellow", D("2021-04-02"), "l1", "l1", "land", False, None)]  # 2021-04-01 in force on 2021-02-01
    started = ProjectFacts(**{**facts.__dict__, "started_on": D("2021-05-01")})
    assert rule_of(started, "land_idle", "2021-05-01") == []


@pytest.mark.parametrize("started_on,as_of,expected", [
    (None, "2022-01-01", []),                                               # 365 days
    (None, "2022-01-02", [("yellow", D("2022-01-02"), False)]),              # a year and a day
    (None, "2023-01-02", [("red", D("2023-01-02"), True)]),                  # two years: red and reclaimable
    ("2022-06-01", "2022-06-01", []),                                       # started: used
])
def test_energy_idle(started_on: str | None, as_of: str, expected: list) -> None:
    energy = GrantFact("e1", "energy", D("2021-01-01"), quantity=Decimal(500))
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (energy,), "started_on": started_on and D(started_on)})
    assert [(level, since, reclaimable) for level, since, _, _, _, reclaimable, _ in
            rule_of(facts, "energy_idle", as_of)] == expected


def test_land_unsupplied() -> None:
    approval = ApprovalFact("PC-1", "620102", Decimal(100), D("2021-01-01"),
                            supplied=((D("2021-06-01"), Decimal(40)), (D("2023-03-01"), Decimal(60))))
    on = lambda day: [(a.level, a.since, a.project_code, a.subject, a.ref, a.district, a.department, a.factor)  # noqa: E731
                      for a in evaluate_approval(approval, D(day))]
    assert on("2022-01-01") == []                                            # 365 days
    assert on("2022-01-02") == [("yellow", D("2022-01-02"), None, "PC-1", "PC-1", "620102", "natural_resources", "land")]
    assert on("2023-01-02") == [("red", D("2023-01-02"), None, "PC-1", "PC-1", "620102", "natural_resources", "land")]
    assert on("2023-03-01") == []                                            # all supplied
    (alert,) = evaluate_approval(approval, D("2022-01-02"))
    assert alert.detail == Detail("land_unsupplied.left", {"approval": "PC-1", "approved_on": "2021-01-01",
                                                           "area": "100", "unsupplied": "60", "days": 366})


CASE = CaseFact("DB-1", "not_started", None, "industry_it", D("2021-04-05"), D("2021-04-20"))


@pytest.mark.parametrize("responded,closed,as_of,expected", [
    ((), None, "2021-04-20", []),                                            # by the due date: nothing yet
    ((), None, "2021-04-21", [("yellow", D("2021-04-21"))]),                  # no response by it
    ((D("2021-04-19"),), None, "2021-04-21", []),                           # answered in time
    ((D("2021-04-25"),), None, "2021-04-25", []),                           # a late answer clears the yellow
    ((D("2021-04-25"),), None, "2021-05-20", []),                           # 30 days after: not yet red
    ((D("2021-04-25"),), None, "2021-05-21", [("red", D("2021-05-21"))]),     # not closed 30 days after it
    ((), None, "2021-05-21", [("red", D("2021-05-21"))]),
    ((), D("2021-05-01"), "2021-05-01", []),                                # closed: none
])
def test_supervision_overdue(responded: tuple, closed: date | None, as_of: str, expected: list) -> None:
    case = replace(CASE, responded_on=responded, closed_on=closed)
    facts = ProjectFacts(**{**STARTED.__dict__, "cases": (case,)})
    found = [(a.level, a.since) for a in evaluate(facts, D(as_of)) if a.rule == "supervision_overdue"]
    assert found == expected
    assert all(a.ref == "DB-1" for a in evaluate(facts, D(as_of)) if a.rule == "supervision_overdue")


def test_an_alert_names_the_open_case_of_its_rule_and_grant_on_its_day() -> None:
    land_case = CaseFact("DB-2", "land_idle", "l1", "natural_resources", D("2021-08-01"), D("2021-08-31"),
                         closed_on=D("2021-09-10"), outcome="waived")
    late_case = replace(CASE, case_id="DB-3", assigned_on=D("2021-05-01"), due_date=D("2021-06-01"))
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (*BASE.grants, LAND), "cases": (land_case, late_case)})
    cases = lambda day: {a.rule: a.case_id for a in evaluate(facts, D(day))}  # noqa: E731
    # DB-3 is itself overdue (supervision_overdue, about which no case is open)
    assert cases("2021-07-31") == {"not_started": "DB-3", "land_idle": None, "supervision_overdue": None}
    assert cases("2021-08-01") == {"not_started": "DB-3", "land_idle": "DB-2", "supervision_overdue": None}
    assert cases("2021-09-10")["land_idle"] is None  # closed (waived): the alert stays, without a case
    assert [a.ref for a in evaluate(facts, D("2021-06-02")) if a.rule == "supervision_overdue"] == ["DB-3"]
    other_grant = replace(land_case, grant_id="l2")
    assert {a.rule: a.case_id for a in evaluate(ProjectFacts(**{**facts.__dict__, "cases": (other_grant,)}),
                                                D("2021-08-01"))}["land_idle"] is None


def test_not_started_follows_the_plan_in_force_on_each_day() -> None:
    """An amendment changes the plan from its day on: alerts on earlier days keep the plan then in force."""
    postponed = ProjectFacts(**{**BASE.__dict__, "start_amendments": ((D("2021-06-15"), D("2021-09-01")),)})
    assert only(postponed, "2021-06-14") == [("not_started", "red", D("2021-05-31"))]
    assert only(postponed, "2021-06-15") == []
    assert only(postponed, "2021-10-02") == [("not_started", "yellow", D("2021-10-02"))]
    (late,) = evaluate(postponed, D("2021-10-02"))
    assert late.detail.params["planned_start"] == "2021-09-01" and late.detail.params["days"] == 31


def test_the_new_thresholds_are_configurable() -> None:
    t = Thresholds(funds_idle_share=Decimal("0.8"), funds_idle_yellow_days=10, funds_idle_red_days=20,
                   land_idle_red_days=5, land_reclaimable_days=6, energy_idle_yellow_days=1, energy_idle_red_days=2,
                   case_close_days=1)
    paid = replace(FUNDS, disbursed=((D("2021-01-02"), Decimal(70)),))
    facts = ProjectFacts(**{**STARTED.__dict__, "started_on": None, "grants": (
        paid, LAND, GrantFact("e1", "energy", D("2021-01-01"), quantity=Decimal(1))), "cases": (CASE,)})
    found = {a.rule: (a.level, a.reclaimable) for a in evaluate(facts, D("2021-07-07"), t)}
    assert found["funds_idle"] == ("red", False)         # 70 % < 80 %
    assert found["land_idle"] == ("red", True)           # 7 days after start_by
    assert found["energy_idle"] == ("red", True)
    assert found["supervision_overdue"] == ("red", False)


def test_every_new_rule_says_its_detail_in_both_languages() -> None:
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (FUNDS, LAND, GrantFact("e1", "energy", D("2021-01-01"),
                                                                                quantity=Decimal(500))),
                            "cases": (CASE,)})
    approval = ApprovalFact("PC-1", "620102", Decimal(100), D("2021-01-01"))
    alerts = {a.rule: a for a in [*evaluate(facts, D("2022-07-01")), *evaluate_approval(approval, D("2022-07-01"))]}
    assert set(FACTOR_RULES) | {"supervision_overdue"} <= set(alerts) and set(alerts) <= set(RULES)
    assert said(alerts["funds_idle"].detail.code, alerts["funds_idle"].detail.params, "zh") == \
        "2021-01-01下达资金100万元（f1），546天后仅拨付0万元"
    assert said(alerts["land_idle"].detail.code, alerts["land_idle"].detail.params, "en") == \
        "供而未用: 30 mu supplied (l1) to start construction by 2021-06-30, not started 366 days later"
    assert said(alerts["energy_idle"].detail.code, alerts["energy_idle"].detail.params, "zh") == \
        "2021-01-01下达能耗指标500吨标煤（e1），546天后项目仍未开工"
    assert said(alerts["land_unsupplied"].detail.code, alerts["land_unsupplied"].detail.params, "zh") == \
        "2021-01-01批准用地100亩（PC-1），546天后仍有100亩未供应"
    assert said(alerts["supervision_overdue"].detail.code, alerts["supervision_overdue"].detail.params, "zh") == \
        "督办事项DB-1办理时限为2021-04-20，已逾期437天仍未销号"
    for rule in (*FACTOR_RULES, "supervision_overdue"):
        assert name_of("rule", rule, "zh") != rule and name_of("rule", rule, "en") != rule


@pytest.mark.parametrize("variable,value,fragment", [
    ("YAOSU_FUNDS_IDLE_SHARE", "half", "must be a number"),
    ("YAOSU_FUNDS_IDLE_SHARE", "0", "more than 0 and at most 1"),
    ("YAOSU_FUNDS_IDLE_SHARE", "1.5", "more than 0 and at most 1"),
    ("YAOSU_FUNDS_IDLE_YELLOW_DAYS", "-1", "from 0 to 3660"),
    ("YAOSU_FUNDS_IDLE_YELLOW_DAYS", "200", "must not be more than YAOSU_FUNDS_IDLE_RED_DAYS"),
    ("YAOSU_LAND_RECLAIMABLE_DAYS", "100", "must not be more than YAOSU_LAND_RECLAIMABLE_DAYS"),
    ("YAOSU_LAND_UNSUPPLIED_RED_DAYS", "ninety", "must be a number"),
    ("YAOSU_ENERGY_IDLE_RED_DAYS", "100000", "from 0 to 3660"),
    ("YAOSU_CASE_CLOSE_DAYS", "-5", "from 0 to 3660"),
])
def test_a_bad_new_threshold_is_one_clear_error(variable: str, value: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value) and fragment in str(caught.value)


def test_the_new_thresholds_default_to_the_contracts_and_read_the_environment() -> None:
    assert Settings.from_env({}).thresholds == Thresholds()
    assert (Thresholds().funds_idle_share, Thresholds().funds_idle_yellow_days, Thresholds().funds_idle_red_days,
            Thresholds().land_idle_red_days, Thresholds().land_reclaimable_days,
            Thresholds().land_unsupplied_yellow_days, Thresholds().land_unsupplied_red_days,
            Thresholds().energy_idle_yellow_days, Thresholds().energy_idle_red_days,
            Thresholds().case_close_days) == (Decimal("0.5"), 90, 180, 365, 730, 365, 730, 365, 730, 30)
    chosen = Settings.from_env({"YAOSU_FUNDS_IDLE_SHARE": "0.3", "YAOSU_LAND_IDLE_RED_DAYS": "200",
                                "YAOSU_CASE_CLOSE_DAYS": "15", "YAOSU_ENERGY_IDLE_YELLOW_DAYS": "100"}).thresholds
    assert (chosen.funds_idle_share, chosen.land_idle_red_days, chosen.case_close_days,
            chosen.energy_idle_yellow_days) == (Decimal("0.3"), 200, 15, 100)


# --- what supervision is told (the monitor's records, v1.2) ------------------------------------------

def test_becoming_reclaimable_is_an_escalation_and_each_change_names_grant_factor_and_case() -> None:
    facts = ProjectFacts(**{**BASE.__dict__, "grants": (LAND,), "cases": (
        CaseFact("DB-9", "land_idle", "l1", "natural_resources", D("2022-01-01"), D("2022-02-01")),)})
    record = SedimentationAlerts(code=facts.code, district=facts.district)
    told: dict[tuple[str, str], str] = {}
    changes = []
    for day in ("2021-07-01", "2022-06-30", "2022-07-01", "2023-07-01", "2023-07-02"):
        now = {(str(a.subject), a.key): a for a in evaluate(facts, D(day)) if a.rule == "land_idle"}
        for change in alert_changes(told, now):
            record.record(change, D(day))
            changes.append((day, change.change))
            told[(change.subject, change.key)] = told_state(change.alert.level, change.alert.reclaimable)
    assert changes == [("2021-07-01", "raised"), ("2022-07-01", "escalated"), ("2023-07-01", "escalated")]
    events = record.collect_events()[1:]
    assert [(e.level, e.reclaimable, e.grant_id, e.factor, e.case_id, e.project_code) for e in events] == [
        ("yellow", False, "l1", "land", None, facts.code), ("red", False, "l1", "land", "DB-9", facts.code),
        ("red", True, "l1", "land", "DB-9", facts.code)]
    # cleared (the land taken back): it names the grant, factor and case it had when last told
    record.record(AlertChange(facts.code, "land_idle:l1", "cleared", None), D("2023-08-01"))
    (cleared,) = record.collect_events()
    assert (cleared.level, cleared.grant_id, cleared.factor, cleared.case_id, cleared.reclaimable) == (
        None, "l1", "land", "DB-9", False)
    assert alert_changes({("x", "land_idle:l1"): "red:reclaimable"}, {("x", "land_idle:l1"): evaluate(
        facts, D("2022-07-01"))[-1]})[0].change == "deescalated"


def test_an_alert_change_recorded_before_v12_reads_as_a_projects_with_no_grant_or_case() -> None:
    state: dict[str, Any] = {"key": "not_started", "detail_code": "not_started.late"}
    SedimentationAlerts.Changed.upcast_v3_v4(state)
    assert state == {"key": "not_started", "detail_code": "not_started.late", "grant_id": None, "factor": None,
                     "reclaimable": False, "case_id": None, "approval_id": None}


def test_an_approvals_alerts_are_recorded_apart_from_any_project() -> None:
    (alert,) = evaluate_approval(ApprovalFact("PC-1", "620102", Decimal(10), D("2021-01-01")), D("2022-01-02"))
    record = SedimentationAlerts.of_approval("PC-1", "620102")
    assert record.id == approval_alerts_id("PC-1") != alerts_id("PC-1")
    record.record(AlertChange("PC-1", alert.key, "raised", alert), D("2022-01-02"))
    (_, raised) = record.collect_events()
    assert (raised.project_code, raised.audit.subject, raised.approval_id, raised.factor) == (None, "PC-1", "PC-1",
                                                                                              "land")
