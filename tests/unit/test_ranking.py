"""大干大支持: the district ranking and the allocation advice against values computed by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.ranking import allocation_advice, rank_districts
from domain.supervision import GrantFact, LibraryFact, PlanFact, ProjectFacts, ReportFact

D = date.fromisoformat
ANNUAL = (LibraryFact("annual", 2021, D("2021-01-12")),)


def project(code: str, district: str, start: str, plan: int, **facts: object) -> ProjectFacts:
    return ProjectFacts(**{"code": code, "name": code, "district": district, "registered_on": D("2021-01-10"),
                           "planned_start": D(start), "libraries": ANNUAL,
                           "plans": (PlanFact(2021, Decimal(plan), D("2021-01-15")),), **facts})  # type: ignore[arg-type]


A1 = project("A1", "620102", "2021-03-01", 100, started_on=D("2021-03-10"), reports=(
    ReportFact("2021-03", Decimal(30), D("2021-04-05")), ReportFact("2021-04", Decimal(20), D("2021-05-05"))))
A2 = project("A2", "620102", "2021-05-01", 100, grants=(GrantFact("g", "land", D("2021-02-01")),))
B1 = project("B1", "620103", "2021-08-01", 300, reports=(ReportFact("2021-05", Decimal(150), D("2021-06-03")),))
ELSEWHERE = project("X1", "620104", "2021-03-01", 999, libraries=(LibraryFact("municipal", None, D("2021-01-12")),))
RELEASED = project("X2", "620104", "2021-03-01", 999, libraries=(
    LibraryFact("annual", 2021, D("2021-01-12"), released_on=D("2021-06-01")),))


def test_the_score_by_hand() -> None:
    a, b = sorted(rank_districts([A1, A2, B1, ELSEWHERE, RELEASED], 2021, D("2021-06-30")), key=lambda r: r.district)
    # 620102: 2 due, 1 started: 0.5; 50 of 200 done = 0.25 against 6/12 = 0.5 expected: progress 0.5;
    # A2 not started 60 days after its start (yellow): load 1 / (2 × 2) = 0.25.
    # 40 × 0.5 + 40 × 0.5 + 20 × 0.75 = 55
    assert (a.district, a.projects, a.due_to_start, a.started, a.start_rate) == ("620102", 2, 2, 1, Decimal("0.5"))
    assert (a.planned_investment, a.completed_investment, a.investment_rate) == (200, 50, Decimal("0.25"))
    assert (a.red_alerts, a.yellow_alerts, a.score, a.rank) == (0, 1, Decimal("55.0"), 2)
    # 620103: none due yet: 1; 150 of 300 against 0.5: 1; no alerts: 100
    assert (b.due_to_start, b.start_rate, b.investment_rate, b.score, b.rank) == (0, 1, Decimal("0.5"), 100, 1)
    # 620104: one project in another library, one released from the annual library: not ranked


def test_ties_share_a_rank() -> None:
    twin = project("C1", "620105", "2021-08-01", 300, reports=B1.reports)
    ranks = {r.district: r.rank for r in rank_districts([A1, A2, B1, twin], 2021, D("2021-06-30"))}
    assert ranks == {"620103": 1, "620105": 1, "620102": 3}


def test_the_advice_by_hand() -> None:
    ranking = rank_districts([A1, A2, B1], 2021, D("2021-06-30"))
    # weights: 620103 100 × 300 = 30,000; 620102 55 × 200 = 11,000; of 41,000
    advice = {s.district: s.share for s in allocation_advice(ranking, Decimal(1000))}
    assert advice == {"620103": Decimal("731.71"), "620102": Decimal("268.29")}
    # Three at 100 (A1 alone is on time): 10,000, 30,000, 30,000 of 70,000 → 14.29 + 42.86 + 42.86 = 100.01:
    # the cent too many comes off the top district (the first of those tied at rank 1).
    thirds = allocation_advice(rank_districts([A1, B1, project("C1", "620105", "2021-08-01", 300, reports=B1.reports)],
                                              2021, D("2021-06-30")), Decimal(100))
    assert [(s.district, s.share) for s in thirds] == [
        ("620102", Decimal("14.28")), ("620103", Decimal("42.86")), ("620105", Decimal("42.86"))]


def test_nothing_annual_nothing_ranked() -> None:
    assert rank_districts([ELSEWHERE], 2021, D("2021-06-30")) == []
    assert allocation_advice([], Decimal(10)) == []
