"""Supervision of factors settling unused (要素沉淀): pure rules over facts and a date.

An alert is evaluated *as of* a date from what had happened by then in business time: the
dates portals report (occurred dates, start and completion dates in payloads), whenever they
were recorded. The read model keeps the facts; the API and the monitor both call `evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Callable, Iterable, Mapping

DAY = timedelta(days=1)
RULES = ("not_started", "lagging", "issue_overdue", "reduction_overdue")
LEVELS = ("yellow", "red")


@dataclass(frozen=True)
class Thresholds:
    """The defaults of the contract; every one configurable (see `infra.settings`)."""

    start_yellow_days: int = 30
    start_red_days: int = 90
    lag_yellow_points: Decimal = Decimal(10)
    lag_red_points: Decimal = Decimal(30)
    issue_red_days: int = 30


@dataclass(frozen=True)
class GrantFact:
    grant_id: str
    factor: str
    granted_on: date
    reclaimed_on: date | None = None
    reduction_id: str | None = None
    #: For a talent grant: the person assigned as the project's responsible leader (包抓领导).
    leader: str | None = None


@dataclass(frozen=True)
class PlanFact:
    year: int
    planned: Decimal
    set_on: date


@dataclass(frozen=True)
class ReportFact:
    """A month's completed investment as reported on a day (a later report corrects it)."""

    period: str  # YYYY-MM
    completed: Decimal
    reported_on: date


@dataclass(frozen=True)
class IssueFact:
    """An issue escalated (重大协调), perhaps again to a higher level with another due date."""

    issue_id: str
    title: str
    #: (the day it was escalated, the due date it was given), in the order escalated
    escalations: tuple[tuple[date, date], ...]
    resolved_on: date | None = None

    @property
    def escalated_on(self) -> date:
        return self.escalations[0][0]

    def due_on(self, day: date) -> date:
        """The due date in force at the end of `day`: the last one given by then."""
        return [due for on, due in self.escalations if on <= day][-1]


@dataclass(frozen=True)
class LibraryFact:
    """A stay in a reserve library: admitted on a day (for a year, for the annual library), maybe released."""

    library: str
    year: int | None
    admitted_on: date
    released_on: date | None = None


@dataclass(frozen=True)
class ReductionFact:
    reduction_id: str
    due_date: date
    completed_on: date | None = None


@dataclass(frozen=True)
class ProjectFacts:
    """What supervision needs to know of one project (and the reductions it drew on)."""

    code: str
    name: str
    district: str
    registered_on: date
    planned_start: date
    department: str = ""  # the horizontal owner, responsible for the project's alerts
    started_on: date | None = None
    completed_on: date | None = None
    cancelled_on: date | None = None
    grants: tuple[GrantFact, ...] = ()
    plans: tuple[PlanFact, ...] = ()
    reports: tuple[ReportFact, ...] = ()  # in the order recorded
    issues: tuple[IssueFact, ...] = ()
    reductions: Mapping[str, ReductionFact] = field(default_factory=dict)
    libraries: tuple[LibraryFact, ...] = ()

    def leader_on(self, day: date) -> str | None:
        """The responsible leader at the end of `day`: the last assigned by then, unless reclaimed."""
        current = [g for g in self.grants if g.leader and g.granted_on <= day and not _on(g.reclaimed_on, day)]
        return max(current, key=lambda g: g.granted_on).leader if current else None

    def in_library_on(self, library: str, year: int | None, day: date) -> bool:
        return any(stay.library == library and (year is None or stay.year == year) and stay.admitted_on <= day
                   and not _on(stay.released_on, day) for stay in self.libraries)


@dataclass(frozen=True)
class Alert:
    """A sedimentation alert (要素沉淀预警) at its current level."""

    project_code: str
    rule: str
    level: str
    since: date
    district: str
    detail: str
    ref: str | None = None  # the issue or reduction it concerns
    department: str = ""  # who answers for it: the project's horizontal owner
    leader: str | None = None  # and its responsible leader (包抓领导) on that day

    @property
    def key(self) -> str:
        """Which of a project's alerts this is: the rule, and the issue or reduction it concerns."""
        return f"{self.rule}:{self.ref}" if self.ref else self.rule


def _closed(facts: ProjectFacts, day: date) -> bool:
    return _on(facts.completed_on, day) or _on(facts.cancelled_on, day)


def _on(happened: date | None, day: date) -> bool:
    """Had it happened by the end of `day`?"""
    return happened is not None and happened <= day


def whole_months(day: date) -> int:
    """Months of the day's year fully elapsed by its end."""
    return day.month if (day + DAY).month != day.month else day.month - 1


def plan_for(facts: ProjectFacts, year: int, day: date) -> Decimal | None:
    """The year's plan as last set by the end of `d` (the latest business date wins)."""
    current = sorted((p for p in facts.plans if p.year == year and p.set_on <= day), key=lambda p: p.set_on)
    return current[-1].planned if current else None


def completed_by(facts: ProjectFacts, year: int, day: date) -> Decimal:
    """Investment completed in `year` as reported by the end of `d`; later reports correct earlier ones."""
    months: dict[str, Decimal] = {}
    prefix = f"{year}-"
    for report in facts.reports:
        if report.period.startswith(prefix) and report.reported_on <= day:
            months[report.period] = report.completed
    return sum(months.values(), Decimal(0))


# --- the rules: each gives (level, detail) on a date, or None -------------------------------


def not_started_level(facts: ProjectFacts, day: date, thresholds: Thresholds) -> tuple[str, str] | None:
    if not _on(facts.registered_on, day) or _closed(facts, day) or _on(facts.started_on, day) or facts.planned_start >= day:
        return None
    # Every factor received counts, reclaimed or not: it was taken, and the start did not follow (v1.1).
    held = [g for g in facts.grants if g.granted_on <= day]
    if not held:
        return None
    late = (day - facts.planned_start).days
    level = "red" if late > thresholds.start_red_days else "yellow" if late > thresholds.start_yellow_days else None
    if level is None:
        return None
    factors = ", ".join(sorted({g.factor for g in held}))
    return level, f"应开未开: planned to start {facts.planned_start}, {late} days ago, holding {factors}"


def lagging_level(facts: ProjectFacts, day: date, thresholds: Thresholds) -> tuple[str, str] | None:
    if not _on(facts.started_on, day) or _closed(facts, day):
        return None
    planned = plan_for(facts, day.year, day)
    months = whole_months(day)
    if not planned or months == 0:
        return None
    completed = completed_by(facts, day.year, day)
    expected = Decimal(months) / 12 * 100
    actual = completed / planned * 100
    gap = expected - actual
    level = "red" if gap > thresholds.lag_red_points else "yellow" if gap >= thresholds.lag_yellow_points else None
    if level is None:
        return None
    return level, (f"严重滞后: {actual:.1f}% of the {day.year} plan done against {expected:.1f}% expected "
                   f"after {months} months ({gap:.1f} points behind)")


def issue_level(facts: ProjectFacts, issue: IssueFact, day: date, thresholds: Thresholds) -> tuple[str, str] | None:
    if not _on(issue.escalated_on, day) or _on(issue.resolved_on, day) or _closed(facts, day):
        return None
    due = issue.due_on(day)
    if day <= due:
        return None
    late = (day - due).days
    level = "red" if late >= thresholds.issue_red_days else "yellow"  # "red 30 days after" the due date
    return level, f"issue {issue.issue_id} ({issue.title}) unresolved {late} days after its due date {due}"


def reduction_level(facts: ProjectFacts, reduction: ReductionFact, day: date, thresholds: Thresholds) -> tuple[str, str] | None:
    advanced = [g for g in facts.grants if g.reduction_id == reduction.reduction_id
                and g.granted_on <= day and not _on(g.reclaimed_on, day)]
    if not advanced or _on(facts.cancelled_on, day) or _on(reduction.completed_on, day):
        return None
    # Red from the due date, or from the completion of the project using it if that comes first.
    if day >= reduction.due_date:
        return "red", f"reduction {reduction.reduction_id} advanced from is not complete by its due date {reduction.due_date}"
    if _on(facts.completed_on, day):
        return "red", f"project completed on {facts.completed_on} before reduction {reduction.reduction_id} was complete"
    return None


# --- evaluation ------------------------------------------------------------------------------


def _since(level_at: Callable[[date], str | None], current: str, points: Iterable[date], as_of: date) -> date:
    """The day the alert reached `current` and stayed there through `as_of`.

    The level only changes on the change points given, so walk back over them.
    """
    since = as_of
    for point in sorted({p for p in points if p <= as_of}, reverse=True):
        if level_at(point) != current:
            break
        since = point
        if level_at(point - DAY) != current:
            break
    return since


def _month_ends(first: date, last: date) -> list[date]:
    points = []
    year, month = first.year, first.month
    while date(year, month, 1) <= last:
        following = date(year + month // 12, month % 12 + 1, 1)
        points += [following - DAY, following]
        year, month = following.year, following.month
    return points


def evaluate(facts: ProjectFacts, as_of: date, thresholds: Thresholds = Thresholds()) -> list[Alert]:
    """Every alert the project has on `as_of`, each with the day it reached its level."""
    alerts: list[Alert] = []
    lifecycle = [facts.registered_on, facts.started_on, facts.completed_on, facts.cancelled_on]
    grant_days = [day for g in facts.grants for day in (g.granted_on, g.reclaimed_on)]

    def add(rule: str, found: tuple[str, str] | None, level_at: Callable[[date], str | None],
            points: list[date | None], ref: str | None = None) -> None:
        if found is None:
            return
        level, detail = found
        since = _since(level_at, level, [p for p in points if p is not None], as_of)
        alerts.append(Alert(facts.code, rule, level, since, facts.district, detail, ref, facts.department,
                            facts.leader_on(as_of)))

    def level_of(rule: Callable[..., tuple[str, str] | None], *args: object) -> Callable[[date], str | None]:
        return lambda day: (found[0] if (found := rule(facts, *args, day, thresholds)) else None)

    ps = facts.planned_start
    add("not_started", not_started_level(facts, as_of, thresholds), level_of(not_started_level),
        [*lifecycle, *grant_days, ps + DAY * (thresholds.start_yellow_days + 1), ps + DAY * (thresholds.start_red_days + 1)])
    if facts.started_on is not None and facts.started_on <= as_of:
        # Lagging is measured within a year (January counts no whole month yet), so only this
        # year's month ends can change its level: a far as-of date costs no more than a near one.
        add("lagging", lagging_level(facts, as_of, thresholds), level_of(lagging_level),
            [*lifecycle, *(p.set_on for p in facts.plans), *(r.reported_on for r in facts.reports),
             *_month_ends(max(facts.started_on, date(as_of.year, 1, 1)), as_of)])
    for issue in facts.issues:
        add("issue_overdue", issue_level(facts, issue, as_of, thresholds),
            lambda day, i=issue: (found[0] if (found := issue_level(facts, i, day, thresholds)) else None),
            [*lifecycle, issue.resolved_on, *(point for on, due in issue.escalations
                                               for point in (on, due + DAY, due + DAY * thresholds.issue_red_days))],
            ref=issue.issue_id)
    for reduction in facts.reductions.values():
        add("reduction_overdue", reduction_level(facts, reduction, as_of, thresholds),
            lambda day, r=reduction: (found[0] if (found := reduction_level(facts, r, day, thresholds)) else None),
            [*lifecycle, *grant_days, reduction.completed_on, reduction.due_date], ref=reduction.reduction_id)
    return alerts
