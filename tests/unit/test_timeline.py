"""The alert timeline answers every day as `evaluate` does: for any facts, on any day, the same alerts
with the same level, since, detail and leader (the index the read model keeps is this timeline)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from domain.supervision import (
    APPROVAL_DEPARTMENT,
    Alert,
    ApprovalFact,
    CaseFact,
    GrantFact,
    IssueFact,
    PlanFact,
    ProjectFacts,
    ReductionFact,
    ReportFact,
    Thresholds,
    approval_timeline,
    evaluate,
    evaluate_approval,
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
        factor = draw(st.sampled_from(["land", "energy", "talent", "emission", "funds"]))
        quantity = Decimal(draw(st.integers(0, 1000)))
        # v1.2: payments out of funds (perhaps before the grant is recorded), land's agreed start
        disbursed = tuple((draw(days), Decimal(draw(st.integers(1, 600)))) for _ in range(draw(st.integers(0, 3)))
                          ) if factor == "funds" else ()
        grants.append(GrantFact(f"g{n}", factor, granted,
                                draw(st.none() | on_or_after(granted)), draw(st.none() | st.sampled_from(["R1", "R2"])),
                                draw(st.none() | st.sampled_from(["李主任", "王副市长"])), quantity, disbursed,
                                draw(st.none() | days) if factor == "land" else None))
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
    amendments = tuple(sorted((on, draw(days)) for on in draw(st.lists(on_or_after(registered), max_size=2))))
    cases = []
    for n in range(draw(st.integers(0, 3))):  # cases of any rule, about a grant or not, some of them for a same key
        assigned = draw(on_or_after(registered))
        due = draw(on_or_after(assigned))
        closed = draw(st.none() | on_or_after(assigned))
        responses = tuple(sorted(draw(st.lists(on_or_after(assigned), max_size=2))))
        cases.append(CaseFact(f"C{n}", draw(st.sampled_from(["not_started", "land_idle", "funds_idle", "energy_idle",
                                                              "supervision_overdue"])),
                              draw(st.none() | st.sampled_from([g.grant_id for g in grants] or ["g0"])),
                              "industry_it", assigned, due, responses, closed))
    used = {g.reduction_id for g in grants if g.reduction_id}
    reductions = {r: ReductionFact(r, draw(days), draw(st.none() | days)) for r in sorted(used)}
    return ProjectFacts(code="2021-620102-48-01-000001", name="p", district="620102", department="industry_it",
                        registered_on=registered, planned_start=draw(on_or_after(registered)), started_on=started,
                        completed_on=completed, cancelled_on=cancelled, grants=tuple(grants), plans=tuple(plans),
                        reports=reports, issues=tuple(issues), reductions=reductions, start_amendments=amendments,
                        cases=tuple(cases))


@st.composite
def approval_facts(draw: st.DrawFn) -> ApprovalFact:
    approved = draw(days)
    supplied = tuple(sorted((draw(days), Decimal(draw(st.integers(1, 60)))) for _ in range(draw(st.integers(0, 4)))))
    return ApprovalFact("PC-1", "620102", Decimal(draw(st.integers(1, 150))), approved, supplied)


def from_timeline(facts: ProjectFacts, day: date, thresholds: Thresholds) -> list[Alert]:
    return [s.alert(facts.code, facts.district, facts.department, day) for s in timeline(facts, thresholds)
            if s.first <= day and (s.last is None or day <= s.last)]


def ordered(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (a.rule, a.ref or ""))


def test_the_strategy_exercises_every_rule() -> None:
    """The property above is only as good as its facts: they raise every project rule, reclaimable and with a
    case. Each is searched for (`find`), so the check does not hang on which examples one run happens to draw."""
    drawn = st.tuples(project_facts(), st.dates(FIRST, LAST + timedelta(days=800)))
    search = settings(max_examples=3000, deadline=None, derandomize=True, phases=[Phase.generate])  # found, not shrunk
    for rule in ("not_started", "issue_overdue", "reduction_overdue", "funds_idle", "land_idle", "energy_idle",
                 "supervision_overdue"):
        find(drawn, lambda pair, rule=rule: any(a.rule == rule for a in evaluate(*pair)), settings=search)
    find(drawn, lambda pair: any(a.reclaimable for a in evaluate(*pair)), settings=search)
    find(drawn, lambda pair: any(a.case_id is not None for a in evaluate(*pair)), settings=search)


THRESHOLDS = st.sampled_from([Thresholds(), Thresholds(start_yellow_days=10, start_red_days=20, issue_red_days=5,
                                                       lag_yellow_points=Decimal(5), lag_red_points=Decimal(15)),
                               Thresholds(report_due_days=0), Thresholds(report_due_days=45),
                               Thresholds(funds_idle_share=Decimal("0.9"), funds_idle_yellow_days=0,
                                          funds_idle_red_days=10, land_idle_red_days=0, land_reclaimable_days=3,
                                          land_unsupplied_yellow_days=5, land_unsupplied_red_days=5,
                                          energy_idle_yellow_days=30, energy_idle_red_days=40, case_close_days=0)])


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


@settings(max_examples=200, deadline=None)
@given(approval_facts(), st.lists(st.dates(FIRST, LAST + timedelta(days=800)), min_size=1, max_size=12), THRESHOLDS)
def test_an_approvals_timeline_answers_any_day_as_evaluation_does(approval: ApprovalFact, when: list[date],
                                                                 thresholds: Thresholds) -> None:
    stretches = approval_timeline(approval, thresholds)
    edges = {day for s in stretches for edge in (s.first, s.last) if edge
             for day in (edge - timedelta(days=1), edge, edge + timedelta(days=1))}
    for day in sorted({*when, *edges}):
        assert [s.alert(None, approval.district, APPROVAL_DEPARTMENT, day, approval.approval_id) for s in stretches
                if s.first <= day and (s.last is None or day <= s.last)] == evaluate_approval(approval, day, thresholds)
