"""The alert timeline answers every day as `evaluate` does: for any facts, on any day, the same alerts
with the same level, since, detail and leader (the index the read model keeps is this timeline)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.supervision import (
    Alert,
    GrantFact,
    IssueFact,
    PlanFact,
    ProjectFacts,
    ReductionFact,
    ReportFact,
    Thresholds,
    evaluate,
    timeline,
)

FIRST, LAST = date(2021, 1, 1), date(2023, 12, 31)
days = st.dates(FIRST, LAST)


def on_or_after(day: date) -> st.SearchStrategy[date]:
    return st.dates(min(day, LAST), LAST)


@st.composite
def project_facts(draw: st.DrawFn) -> ProjectFacts:
    registered = draw(days)
    started = draw(st.none() | on_or_after(registered))
    completed = draw(st.none() | on_or_after(started)) if started else None
    cancelled = draw(st.none() | on_or_after(registered)) if not completed else None
    grants = []
    for n in range(draw(st.integers(0, 4))):
        granted = draw(on_or_after(registered))
        grants.append(GrantFact(f"g{n}", draw(st.sampled_from(["land", "energy", "talent", "emission"])), granted,
                                draw(st.none() | on_or_after(granted)), draw(st.none() | st.sampled_from(["R1", "R2"])),
                                draw(st.none() | st.sampled_from(["李主任", "王副市长"]))))
    plans = []
    for _ in range(draw(st.integers(0, 3))):
        year = draw(st.integers(2021, 2023))  # set some time before or within its year
        plans.append(PlanFact(year, Decimal(draw(st.integers(1, 5000))),
                              draw(st.dates(date(year - 1, 10, 1), date(year, 12, 31)))))
    reports = tuple(ReportFact(f"{draw(st.integers(2021, 2023))}-{draw(st.integers(1, 12)):02d}",
                               Decimal(draw(st.integers(0, 800))), draw(days))
                    for _ in range(draw(st.integers(0, 8))))
    issues = []
    for n in range(draw(st.integers(0, 2))):
        escalations = sorted((on, draw(on_or_after(on))) for on in draw(st.lists(days, min_size=1, max_size=2)))
        issues.append(IssueFact(f"i{n}", "征地拆迁", tuple(escalations),
                                draw(st.none() | on_or_after(escalations[0][0]))))
    used = {g.reduction_id for g in grants if g.reduction_id}
    reductions = {r: ReductionFact(r, draw(days), draw(st.none() | days)) for r in sorted(used)}
    return ProjectFacts(code="2021-620102-48-01-000001", name="p", district="620102", department="industry_it",
                        registered_on=registered, planned_start=draw(on_or_after(registered)), started_on=started,
                        completed_on=completed, cancelled_on=cancelled, grants=tuple(grants), plans=tuple(plans),
                        reports=reports, issues=tuple(issues), reductions=reductions)


def from_timeline(facts: ProjectFacts, day: date, thresholds: Thresholds) -> list[Alert]:
    return [s.alert(facts.code, facts.district, facts.department, day) for s in timeline(facts, thresholds)
            if s.first <= day and (s.last is None or day <= s.last)]


def ordered(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (a.rule, a.ref or ""))


THRESHOLDS = st.sampled_from([Thresholds(), Thresholds(start_yellow_days=10, start_red_days=20, issue_red_days=5,
                                                       lag_yellow_points=Decimal(5), lag_red_points=Decimal(15)),
                               Thresholds(report_due_days=0), Thresholds(report_due_days=45)])


@settings(max_examples=300, deadline=None)
@given(project_facts(), st.lists(st.dates(FIRST, LAST + timedelta(days=800)), min_size=1, max_size=12), THRESHOLDS)
def test_the_timeline_answers_any_day_as_evaluation_does(facts: ProjectFacts, when: list[date],
                                                         thresholds: Thresholds) -> None:
    edges = {day for s in timeline(facts, thresholds) for edge in (s.first, s.last) if edge
             for day in (edge - timedelta(days=1), edge, edge + timedelta(days=1))}
    for day in sorted({*when, *edges}):
        assert ordered(from_timeline(facts, day, thresholds)) == ordered(evaluate(facts, day, thresholds))


@settings(max_examples=100, deadline=None)
@given(project_facts())
def test_stretches_of_one_alert_do_not_overlap(facts: ProjectFacts) -> None:
    stretches = timeline(facts)
    for key in {(s.rule, s.ref) for s in stretches}:
        mine = [s for s in stretches if (s.rule, s.ref) == key]
        for earlier, later in zip(mine, mine[1:]):
            assert earlier.last is not None and earlier.last < later.first
        assert all(s.since <= s.first and (s.last is None or s.first <= s.last) for s in mine)
