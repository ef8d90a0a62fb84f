"""大干大支持,多干多支持,不干不支持: districts ranked by how their annual projects move, and the
factors of the next round split by that rank (the seed's rule 10). Pure functions of the supervision
facts and a date, in business time like the alerts.

The score of a district for a year, as of a date, out of 100:

    score = 40 × start rate + 40 × progress + 20 × (1 − alert load)

- start rate: of its annual-library projects whose planned start has come, the share that started
  (1 when none is due yet);
- progress: investment completed in the year over the year's plan, against the time-proportional
  target (whole months elapsed / 12), capped at 1 (1 before any month has elapsed);
- alert load: (2 × red alerts + yellow alerts) over 2 × projects, capped at 1 (every rule's alerts
  about the district's annual projects count, the factor-level ones and overdue cases too; an
  approval's alert is about no project and counts in none).

Beside the score it counts the supervision cases (督办) of those projects: open on the date, and
closed by then no later than `case_close_days` after their due date.

The advice splits a total over the ranked districts in proportion to

    weight = score × annual-library planned investment × (1 − idle share of the factor)

the idle share being the part of that factor granted to the district's projects that lies under an
active factor-level alert (see `projections.sedimentation.idle_shares`): the more a district does
and the more it has to do, the more it gets; the more of the factor it leaves idle, the less
(大干大支持, 不干不支持).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Mapping

from domain.supervision import (
    DAY,
    Alert,
    ProjectFacts,
    Thresholds,
    completed_by,
    evaluate,
    plan_for,
    whole_months,
)
from domain.texts import Detail

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
START_WEIGHT, PROGRESS_WEIGHT, ALERT_WEIGHT = Decimal(40), Decimal(40), Decimal(20)


@dataclass(frozen=True)
class DistrictScore:
    district: str
    projects: int
    due_to_start: int
    started: int
    start_rate: Decimal
    planned_investment: Decimal
    completed_investment: Decimal
    investment_rate: Decimal
    red_alerts: int
    yellow_alerts: int
    score: Decimal
    rank: int = 0
    cases_open: int = 0  # supervision cases open on the date (v1.2)
    cases_closed_in_time: int = 0  # closed by the date, at most `case_close_days` after their due date


@dataclass(frozen=True)
class Share:
    district: str
    score: Decimal
    weight: Decimal
    share: Decimal
    reason: Detail  # how the share was weighed (`advice.weight`)


@dataclass(frozen=True)
class Member:
    """What a district's score counts of one of its annual-library projects on a day: whether its planned
    start had come (`due`) and it had started by then (`started`, only if due), the year's plan and the
    investment completed as known that day, and its supervision cases (open; closed in time)."""

    code: str
    district: str
    due: bool
    started: bool
    planned: Decimal
    completed: Decimal
    cases_open: int = 0
    cases_closed_in_time: int = 0


def member_of(project: ProjectFacts, year: int, as_of: date, thresholds: Thresholds) -> Member:
    due = project.planned_start_on(as_of) <= as_of
    cases = [c for c in project.cases if c.assigned_on <= as_of]
    closed = [c for c in cases if c.closed_on is not None and c.closed_on <= as_of]
    return Member(project.code, project.district, due,
                  due and project.started_on is not None and project.started_on <= as_of,
                  plan_for(project, year, as_of) or Decimal(0), completed_by(project, year, as_of),
                  len(cases) - len(closed), sum(1 for c in closed if c.closed_on is not None and (
                      c.closed_on - c.due_date).days <= thresholds.case_close_days))


@dataclass(frozen=True)
class Standing:
    """What the project counts in `year`'s ranking (`member_of`) from `first` to `last` (None: from then
    on): the days it is in that year's annual library, in stretches over which nothing it counts changes."""

    year: int
    first: date
    last: date | None
    member: Member


def standings(project: ProjectFacts, thresholds: Thresholds = Thresholds()) -> list[Standing]:
    """`member_of` the project for every day and every year it is ever in the annual library, as stretches.
    What it counts changes only on the days its facts name, so it is worked out on those days alone."""
    points = sorted({project.planned_start, *(d for amended in project.start_amendments for d in amended),
                     *(d for stay in project.libraries for d in (stay.admitted_on, stay.released_on) if d),
                     *((project.started_on,) if project.started_on else ()), *(p.set_on for p in project.plans),
                     *(r.reported_on for r in project.reports),
                     *(d for c in project.cases for d in (c.assigned_on, c.closed_on) if d)})
    found: list[Standing] = []
    for year in sorted({stay.year for stay in project.libraries if stay.library == "annual" and stay.year}):
        previous: Standing | None = None
        for n, first in enumerate(points):
            last = points[n + 1] - DAY if n + 1 < len(points) else None
            if not project.in_library_on("annual", year, first):
                previous = None
                continue
            member = member_of(project, year, first, thresholds)
            if previous is not None and previous.member == member:
                previous = found[-1] = Standing(year, previous.first, last, member)
                continue
            previous = Standing(year, first, last, member)
            found.append(previous)
    return found


def rank_districts(facts: Iterable[ProjectFacts], year: int, as_of: date, thresholds: Thresholds = Thresholds(),
                   *, alerts: Iterable[Alert] | None = None) -> list[DistrictScore]:
    """One row per district with projects in the annual library for `year` on `as_of`, best first.

    `alerts`: the alerts on `as_of`, if already known (the alert index answers them without
    evaluating every project); otherwise each member's are evaluated from its facts."""
    members = [p for p in facts if p.in_library_on("annual", year, as_of)]
    if alerts is None:
        alerts = (a for p in members for a in evaluate(p, as_of, thresholds))
    return rank_members([member_of(p, year, as_of, thresholds) for p in members], year, as_of, alerts)


def rank_members(members: Iterable[Member], year: int, as_of: date, alerts: Iterable[Alert]) -> list[DistrictScore]:
    """`rank_districts` of the members worked out already (a read model may count them without their facts)."""
    listed = list(members)
    levels: dict[str, list[str]] = {}
    for alert in alerts:
        levels.setdefault(alert.project_code, []).append(alert.level)
    tallies: dict[str, Tally] = {}
    for m in listed:
        tallies[m.district] = tallies.get(m.district, Tally()) + Tally.of(m, levels.get(m.code, []))
    return rank_tallies(tallies, year, as_of)


@dataclass(frozen=True)
class Tally:
    """What a district's score adds up of its annual-library projects on a day: how many they are, are due
    to start and started, the year's plan and investment completed, their alerts by level, their cases."""

    projects: int = 0
    due: int = 0
    started: int = 0
    planned: Decimal = Decimal(0)
    completed: Decimal = Decimal(0)
    red: int = 0
    yellow: int = 0
    cases_open: int = 0
    cases_closed_in_time: int = 0

    @classmethod
    def of(cls, member: Member, levels: list[str]) -> Tally:
        """One project's part: what it counts (`member_of`) and the levels of its alerts that day."""
        return cls(1, int(member.due), int(member.started), member.planned, member.completed, levels.count("red"),
                   levels.count("yellow"), member.cases_open, member.cases_closed_in_time)

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(a + b for a, b in zip(astuple(self), astuple(other))))


def rank_tallies(tallies: Mapping[str, Tally], year: int, as_of: date) -> list[DistrictScore]:
    """The districts scored from what each adds up (`Tally`), best first; ties share a rank."""
    expected = Decimal(whole_months(as_of) if as_of.year == year else 12 if as_of.year > year else 0) / 12
    scored = [_score(district, tally, expected) for district, tally in sorted(tallies.items()) if tally.projects]
    ordered = sorted(scored, key=lambda row: (-row.score, row.district))
    return [DistrictScore(**{**row.__dict__, "rank": 1 + sum(other.score > row.score for other in ordered)})
            for row in ordered]


def _score(district: str, t: Tally, expected: Decimal) -> DistrictScore:
    start_rate = Decimal(t.started) / t.due if t.due else Decimal(1)
    investment_rate = t.completed / t.planned if t.planned else Decimal(0)
    progress = min(investment_rate / expected, Decimal(1)) if expected else Decimal(1)
    load = min(Decimal(2 * t.red + t.yellow) / (2 * t.projects), Decimal(1))
    score = START_WEIGHT * start_rate + PROGRESS_WEIGHT * progress + ALERT_WEIGHT * (1 - load)
    return DistrictScore(district=district, projects=t.projects, due_to_start=t.due, started=t.started,
                         start_rate=_places(start_rate, Decimal("0.0001")), planned_investment=t.planned,
                         completed_investment=t.completed,
                         investment_rate=_places(investment_rate, Decimal("0.0001")), red_alerts=t.red,
                         yellow_alerts=t.yellow, score=_places(score, TENTH), cases_open=t.cases_open,
                         cases_closed_in_time=t.cases_closed_in_time)


def allocation_advice(ranking: list[DistrictScore], total: Decimal,
                      idle_share: Mapping[str, Decimal] = {}) -> list[Share]:
    """`total` split over the ranked districts by score × annual planned investment × (1 − the district's
    idle share of the factor, none if not given), to the cent, the remainder of the rounding on the top
    district (equal shares where every weight is nothing)."""
    if not ranking:
        return []
    weights = [row.score * row.planned_investment * (1 - idle_share.get(row.district, Decimal(0))) for row in ranking]
    whole = sum(weights, Decimal(0))
    if not whole:
        weights, whole = [Decimal(1)] * len(ranking), Decimal(len(ranking))
    shares = [_places(total * weight / whole, CENT) for weight in weights]
    shares[0] += total - sum(shares, Decimal(0))  # the top district: `ranking` is best first
    return [Share(row.district, row.score, weight, share, _reason(row, weight, whole, idle_share.get(row.district)))
            for row, weight, share in zip(ranking, weights, shares)]


def _reason(row: DistrictScore, weight: Decimal, whole: Decimal, idle: Decimal | None) -> Detail:
    """How a share was weighed: `advice.weight`, or `advice.weight_idle` where some of the factor lies idle."""
    params = {"score": str(row.score), "planned_investment": str(row.planned_investment),
              "weight": str(_places(weight, TENTH)), "percent": str(_places(100 * weight / whole, TENTH))}
    if not idle:
        return Detail("advice.weight", params)
    return Detail("advice.weight_idle", {**params, "idle_percent": str(_places(100 * idle, TENTH))})


def _places(value: Decimal, places: Decimal) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)
