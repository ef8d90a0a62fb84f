"""Supervision of factors settling unused (要素沉淀): pure rules over facts and a date.

An alert is evaluated *as of* a date from what had happened by then in business time: the
dates portals report (occurred dates, start and completion dates in payloads), whenever they
were recorded. The read model keeps the facts; the API and the monitor both call `evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Callable, Iterable, Mapping

from domain.texts import Detail

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
    #: Days after a month's end by which its investment is reported (月度投资统计): the
    #: time-proportional target counts a month only from then on.
    report_due_days: int = 10


@dataclass(frozen=True)
class GrantFact:
    grant_id: str
    factor: str
    granted_on: date
    reclaimed_on: date | None = None
    reduction_id: str | None = None
    #: For a talent grant: the person assigned as the project's responsible leader (包抓领导).
    leader: str | None = None
    #: How much was granted (万元, 亩, 吨标煤, 吨), where the factor is measured (v1.2).
    quantity: Decimal | None = None
    #: Of funds: each payment out of it, (day paid, amount), in the order recorded (资金拨付, v1.2).
    disbursed: tuple[tuple[date, Decimal], ...] = ()
    #: Of land: the start of construction agreed (约定动工日期; None: the project's planned start) (v1.2).
    start_by: date | None = None


@dataclass(frozen=True)
class CaseFact:
    """A supervision case (督办, v1.2): assigned, answered (perhaps more than once), closed."""

    case_id: str
    rule: str
    grant_id: str | None
    responsible: str
    assigned_on: date
    due_date: date
    responded_on: tuple[date, ...] = ()
    closed_on: date | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class ApprovalFact:
    """Land approved in a district (批次用地, v1.2), and each supply drawn on it: (day supplied, area)."""

    approval_id: str
    district: str
    area: Decimal
    approved_on: date
    supplied: tuple[tuple[date, Decimal], ...] = ()


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
    #: Amendments of the planned start (项目调整, v1.2): (the day it took effect, the new planned start).
    start_amendments: tuple[tuple[date, date], ...] = ()
    cases: tuple[CaseFact, ...] = ()

    def planned_start_on(self, day: date) -> date:
        """The planned start in force at the end of `day`: the last amendment by then, else the registered one."""
        current = [start for on, start in self.start_amendments if on <= day]
        return current[-1] if current else self.planned_start

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
    detail: Detail  # what it says (`DETAILS`), in words by the catalogue
    ref: str | None = None  # the issue or reduction it concerns
    department: str = ""  # who answers for it: the project's horizontal owner
    leader: str | None = None  # and its responsible leader (包抓领导) on that day
    grant_id: str | None = None  # the grant it concerns (factor-level rules, v1.2)
    factor: str | None = None
    reclaimable: bool = False  # may be taken back (v1.2)
    case_id: str | None = None  # the open supervision case about it, if any (v1.2)

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


def months_due(day: date, due_days: int) -> int:
    """Months of the day's year whose report was due by its end (the month's end plus `due_days`):
    those the time-proportional target counts (序时进度). A month nobody could have reported yet
    would make every project on track look behind at each month's end."""
    reported_by = day - DAY * due_days
    return whole_months(reported_by) if reported_by.year == day.year else 0


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


# --- the rules: each gives a finding on a date, or None -------------------------------------


@dataclass(frozen=True)
class Finding:
    """A rule's verdict on one day: the level, and what its detail states that holds over a stretch
    of days (`about`); the detail adds only what the day itself changes (how many days late)."""

    level: str
    about: tuple[str, ...]


def not_started_level(facts: ProjectFacts, day: date, thresholds: Thresholds) -> Finding | None:
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
    return Finding(level, (facts.planned_start.isoformat(), ", ".join(sorted({g.factor for g in held}))))


def lagging_level(facts: ProjectFacts, day: date, thresholds: Thresholds) -> Finding | None:
    if not _on(facts.started_on, day) or _closed(facts, day):
        return None
    planned = plan_for(facts, day.year, day)
    months = months_due(day, thresholds.report_due_days)
    if not planned or months == 0:
        return None
    completed = completed_by(facts, day.year, day)
    expected = Decimal(months) / 12 * 100
    actual = completed / planned * 100
    gap = expected - actual
    level = "red" if gap > thresholds.lag_red_points else "yellow" if gap >= thresholds.lag_yellow_points else None
    if level is None:
        return None
    return Finding(level, (f"{actual:.1f}", str(day.year), f"{expected:.1f}", str(months), f"{gap:.1f}"))


def issue_level(facts: ProjectFacts, issue: IssueFact, day: date, thresholds: Thresholds) -> Finding | None:
    if not _on(issue.escalated_on, day) or _on(issue.resolved_on, day) or _closed(facts, day):
        return None
    due = issue.due_on(day)
    if day <= due:
        return None
    late = (day - due).days
    level = "red" if late >= thresholds.issue_red_days else "yellow"  # "red 30 days after" the due date
    return Finding(level, (issue.issue_id, issue.title, due.isoformat()))


def reduction_level(facts: ProjectFacts, reduction: ReductionFact, day: date, thresholds: Thresholds) -> Finding | None:
    advanced = [g for g in facts.grants if g.reduction_id == reduction.reduction_id
                and g.granted_on <= day and not _on(g.reclaimed_on, day)]
    if not advanced or _on(facts.cancelled_on, day) or _on(reduction.completed_on, day):
        return None
    # Red from the due date, or from the completion of the project using it if that comes first.
    if day >= reduction.due_date:
        return Finding("red", ("due", reduction.reduction_id, reduction.due_date.isoformat()))
    if _on(facts.completed_on, day):
        return Finding("red", ("completed", reduction.reduction_id, str(facts.completed_on)))
    return None


def _days_since(iso: str, day: date) -> int:
    return (day - date.fromisoformat(iso)).days


#: What each rule's detail says on a day, from its finding's `about`: the one statement of every alert,
#: worded by the catalogue (`infra.catalogue.said`).
DETAILS: dict[str, Callable[[tuple[str, ...], date], Detail]] = {
    "not_started": lambda about, day: Detail("not_started.late", {
        "planned_start": about[0], "days": _days_since(about[0], day), "factors": about[1].split(", ")}),
    "lagging": lambda about, day: Detail("lagging.behind", {
        "done": about[0], "year": int(about[1]), "expected": about[2], "months": int(about[3]), "gap": about[4]}),
    "issue_overdue": lambda about, day: Detail("issue_overdue.unresolved", {
        "issue": about[0], "title": about[1], "days": _days_since(about[2], day), "due_date": about[2]}),
    "reduction_overdue": lambda about, day: (
        Detail("reduction_overdue.due", {"reduction": about[1], "due_date": about[2]}) if about[0] == "due" else
        Detail("reduction_overdue.project_completed", {"reduction": about[1], "completed_on": about[2]})),
}


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One alert a project may have: its rule, the issue or reduction it concerns, and the days on
    which its finding can change (it holds from each such day until the next)."""

    rule: str
    ref: str | None
    finding_on: Callable[[date], Finding | None]
    points: tuple[date, ...]


def checks(facts: ProjectFacts, thresholds: Thresholds, *, lagging_years: Iterable[int] = ()) -> list[Check]:
    """The alerts this project may have. Lagging is measured within a year (its first month counts
    once its report is due), so only the due days of `lagging_years` are among its days of change."""
    lifecycle = [facts.registered_on, facts.started_on, facts.completed_on, facts.cancelled_on]
    grant_days = [day for g in facts.grants for day in (g.granted_on, g.reclaimed_on)]

    def days(*points: date | None) -> tuple[date, ...]:
        return tuple(sorted({p for p in points if p is not None}))

    ps, started = facts.planned_start, facts.started_on
    found = [Check("not_started", None, lambda day: not_started_level(facts, day, thresholds), days(
        *lifecycle, *grant_days, ps + DAY * (thresholds.start_yellow_days + 1), ps + DAY * (thresholds.start_red_days + 1)))]
    if started is not None:
        reports_due = [point for year in lagging_years if year >= started.year
                       for point in _reports_due(year, thresholds.report_due_days)]
        found.append(Check("lagging", None, lambda day: lagging_level(facts, day, thresholds), days(
            *lifecycle, *(p.set_on for p in facts.plans), *(r.reported_on for r in facts.reports), *reports_due)))
    for issue in facts.issues:
        found.append(Check("issue_overdue", issue.issue_id,
                           lambda day, i=issue: issue_level(facts, i, day, thresholds),  # type: ignore[misc]
                           days(*lifecycle, issue.resolved_on, *(point for on, due in issue.escalations for point in (
                               on, due + DAY, due + DAY * thresholds.issue_red_days)))))
    for reduction in facts.reductions.values():
        found.append(Check("reduction_overdue", reduction.reduction_id,
                           lambda day, r=reduction: reduction_level(facts, r, day, thresholds),  # type: ignore[misc]
                           days(*lifecycle, *grant_days, reduction.completed_on, reduction.due_date)))
    return found


def _since(check: Check, current: str, as_of: date) -> date:
    """The day the alert reached `current` and stayed there through `as_of`.

    The finding only changes on the check's days of change, so walk back over them.
    """
    def level_at(day: date) -> str | None:
        found = check.finding_on(day)
        return found.level if found else None

    since = as_of
    for point in reversed([p for p in check.points if p <= as_of]):
        if level_at(point) != current:
            break
        since = point
        if level_at(point - DAY) != current:
            break
    return since


def _reports_due(year: int, due_days: int) -> list[date]:
    """The days on which `months_due` grows in `year`, and the first of the next (a new year's target)."""
    month_ends = (date(year + month // 12, month % 12 + 1, 1) - DAY for month in range(1, 13))
    return [due for due in (end + DAY * due_days for end in month_ends) if due.year == year] + [date(year + 1, 1, 1)]


def evaluate(facts: ProjectFacts, as_of: date, thresholds: Thresholds = Thresholds()) -> list[Alert]:
    """Every alert the project has on `as_of`, each with the day it reached its level."""
    alerts = []
    for check in checks(facts, thresholds, lagging_years=(as_of.year,)):
        found = check.finding_on(as_of)
        if found is not None:
            alerts.append(Alert(facts.code, check.rule, found.level, _since(check, found.level, as_of), facts.district,
                                DETAILS[check.rule](found.about, as_of), check.ref, facts.department,
                                facts.leader_on(as_of)))
    return alerts


# --- the timeline: every alert of a project over all days, for an index ---------------------


@dataclass(frozen=True)
class Stretch:
    """An alert over consecutive days, `first` to `last` (None: on and on, until the facts change),
    through which its level, `about` and the responsible leader stay the same."""

    rule: str
    ref: str | None
    level: str
    since: date  # the day it reached this level (a stretch may continue an earlier one at the same level)
    first: date
    last: date | None
    about: tuple[str, ...]
    leader: str | None

    def alert(self, code: str, district: str, department: str, day: date) -> Alert:
        """The alert on a day of this stretch, as `evaluate` gives it."""
        return Alert(code, self.rule, self.level, self.since, district, DETAILS[self.rule](self.about, day), self.ref,
                     department, self.leader)


def timeline(facts: ProjectFacts, thresholds: Thresholds = Thresholds()) -> list[Stretch]:
    """Every alert the project ever has, as it stands on these facts: `evaluate(facts, day)` for any
    day, as stretches. Nothing changes between the days of change but the day-count in a detail."""
    years = {p.year for p in facts.plans}
    leader_days = sorted({day for g in facts.grants if g.leader for day in (g.granted_on, g.reclaimed_on) if day})
    stretches: list[Stretch] = []
    for check in checks(facts, thresholds, lagging_years=years):
        points = sorted({*check.points, *leader_days})
        previous: Stretch | None = None
        for n, first in enumerate(points):
            last = points[n + 1] - DAY if n + 1 < len(points) else None
            found = check.finding_on(first)
            if found is None:
                previous = None
                continue
            leader = facts.leader_on(first)
            if previous is not None and (previous.level, previous.about, previous.leader) == (
                    found.level, found.about, leader):
                previous = stretches[-1] = replace(previous, last=last)
                continue
            since = previous.since if previous is not None and previous.level == found.level else first
            previous = Stretch(check.rule, check.ref, found.level, since, first, last, found.about, leader)
            stretches.append(previous)
    return stretches
