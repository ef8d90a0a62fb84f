"""The supervision rules as pure functions of facts and a date (no store involved)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from domain.supervision import (
    GrantFact,
    IssueFact,
    PlanFact,
    ProjectFacts,
    ReductionFact,
    ReportFact,
    Thresholds,
    evaluate,
    months_due,
    whole_months,
)

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
