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
RULES = ("not_started", "lagging", "issue_overdue", "reduction_overdue",
         "funds_idle", "land_idle", "land_unsupplied", "energy_idle", "supervision_overdue")
#: The factor-level rules (v1.2): each about one grant of a project, or (`land_unsupplied`) one land approval.
FACTOR_RULES = ("funds_idle", "land_idle", "land_unsupplied", "energy_idle")
LEVELS = ("yellow", "red")
#: The rules about an approval rather than a project.
APPROVAL_RULES = ("land_unsupplied",)
#: Who answers for an approval's alert (批而未供): the land authority. An approval has no project, so no
#: supervision case can be assigned about it (the case messages are about projects).
APPROVAL_DEPARTMENT = "natural_resources"


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
    # v1.2, the factor-level rules. "Yellow N days after X" reads as not_started's "late" does: the
    # alert is raised once more than N days have passed (day − X > N), i.e. on day X + N + 1.
    #: Funds are idle while less than this share of the amount allocated is disbursed (资金沉淀).
    funds_idle_share: Decimal = Decimal("0.5")
    funds_idle_yellow_days: int = 90
    funds_idle_red_days: int = 180
    #: Land not built on is yellow from the day after its start_by, red (闲置土地) and then reclaimable after these.
    land_idle_red_days: int = 365
    land_reclaimable_days: int = 730
    land_unsupplied_yellow_days: int = 365
    land_unsupplied_red_days: int = 730
    #: An energy grant's review opinion lapses after two years (节能审查意见两年有效): red and reclaimable then.
    energy_idle_yellow_days: int = 365
    energy_idle_red_days: int = 730
    #: Days after a case's due date by which it is to be closed (销号).
    case_close_days: int = 30


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

    def case_on(self, rule: str, grant_id: str | None, day: date) -> str | None:
        """The supervision case open at the end of `day` about this rule (and grant), if any."""
        return next((c.case_id for c in self.cases if c.rule == rule and c.grant_id == grant_id
                     and c.assigned_on <= day and not _on(c.closed_on, day)), None)

    def case_days(self, rule: str, grant_id: str | None) -> tuple[date, ...]:
        """The days on which the open case of this rule (and grant) can change."""
        return tuple(day for c in self.cases if c.rule == rule and c.grant_id == grant_id
                     for day in (c.assigned_on, c.closed_on) if day is not None)

    def start_by(self, grant: GrantFact) -> date:
        """When construction is to start on land supplied: as agreed, else the planned start then in force."""
        return grant.start_by or self.planned_start_on(grant.granted_on)

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
    """A sedimentation alert (要素沉淀预警) at its current level.

    `subject` is what it is about: the project's code, or, for an approval's alert (`land_unsupplied`,
    with `project_code` None), the approval id."""

    project_code: str | None
    rule: str
    level: str
    since: date
    district: str
    detail: Detail  # what it says (`detail`), in words by the catalogue
    ref: str | None = None  # the issue or reduction it concerns
    department: str = ""  # who answers for it: the project's horizontal owner
    leader: str | None = None  # and its responsible leader (包抓领导) on that day
    grant_id: str | None = None  # the grant it concerns (factor-level rules, v1.2)
    factor: str | None = None
    reclaimable: bool = False  # may be taken back (v1.2)
    case_id: str | None = None  # the open supervision case about it (its project, rule and grant), if any (v1.2)
    subject: str | None = None  # the project code, or the approval id (v1.2)

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
    reclaimable: bool = False


def not_started_level(facts: ProjectFacts, day: date, thresholds: Thresholds) -> Finding | None:
    planned_start = facts.planned_start_on(day)  # an amendment changes the plan from its day on (v1.2)
    if not _on(facts.registered_on, day) or _closed(facts, day) or _on(facts.started_on, day) or planned_start >= day:
        return None
    # Every factor received counts, reclaimed or not: it was taken, and the start did not follow (v1.1).
    held = [g for g in facts.grants if g.granted_on <= day]
    if not held:
        return None
    late = (day - planned_start).days
    level = "red" if late > thresholds.start_red_days else "yellow" if late > thresholds.start_yellow_days else None
    if level is None:
        return None
    return Finding(level, (planned_start.isoformat(), ", ".join(sorted({g.factor for g in held}))))


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


def _live(grant: GrantFact, day: date) -> bool:
    """Granted by the end of `day`, and not reclaimed: a reclaimed grant raises no factor-level alert."""
    return grant.granted_on <= day and not _on(grant.reclaimed_on, day)


def _amount(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def disbursed_by(grant: GrantFact, day: date) -> Decimal:
    """Of funds: how much was paid out of the grant by the end of `day` (by the payments' own dates)."""
    return sum((amount for paid_on, amount in grant.disbursed if paid_on <= day), Decimal(0))


def funds_idle_level(grant: GrantFact, day: date, thresholds: Thresholds) -> Finding | None:
    """资金沉淀: funds allocated of which less than `funds_idle_share` is disbursed, more than
    `funds_idle_yellow_days` (red: `funds_idle_red_days`) days after the allocation. Whatever becomes of
    the project: money not paid out lies idle until it is, or is taken back."""
    if grant.quantity is None or not _live(grant, day):
        return None
    paid = disbursed_by(grant, day)
    if paid >= grant.quantity * thresholds.funds_idle_share:
        return None
    held = (day - grant.granted_on).days
    level = ("red" if held > thresholds.funds_idle_red_days else
             "yellow" if held > thresholds.funds_idle_yellow_days else None)
    if level is None:
        return None
    return Finding(level, (grant.grant_id, grant.granted_on.isoformat(), _amount(grant.quantity), str(paid)))


def land_idle_level(facts: ProjectFacts, grant: GrantFact, day: date, thresholds: Thresholds) -> Finding | None:
    """供而未用: land supplied and construction not started by its `start_by`: yellow from the day
    after, red (闲置土地) more than `land_idle_red_days` after it, reclaimable more than
    `land_reclaimable_days` after it. A cancelled project's land stays idle until taken back."""
    if not _live(grant, day) or _on(facts.started_on, day):
        return None
    start_by = facts.start_by(grant)
    late = (day - start_by).days
    if late <= 0:
        return None
    level = "red" if late > thresholds.land_idle_red_days else "yellow"
    return Finding(level, (grant.grant_id, start_by.isoformat(), _amount(grant.quantity)),
                   reclaimable=late > thresholds.land_reclaimable_days)


def energy_idle_level(facts: ProjectFacts, grant: GrantFact, day: date, thresholds: Thresholds) -> Finding | None:
    """能耗指标沉淀: energy granted and construction not started, more than `energy_idle_yellow_days`
    after the grant; red, and reclaimable, more than `energy_idle_red_days` after it."""
    if not _live(grant, day) or _on(facts.started_on, day):
        return None
    held = (day - grant.granted_on).days
    level = ("red" if held > thresholds.energy_idle_red_days else
             "yellow" if held > thresholds.energy_idle_yellow_days else None)
    if level is None:
        return None
    return Finding(level, (grant.grant_id, grant.granted_on.isoformat(), _amount(grant.quantity)),
                   reclaimable=level == "red")


def supervision_overdue_level(case: CaseFact, day: date, thresholds: Thresholds) -> Finding | None:
    """督办逾期, read as: while the case is open, yellow from the day after its due date as long as no
    response has come (a late response clears the yellow); red, response or not, once it is still open
    more than `case_close_days` after the due date. A closed case raises nothing."""
    if case.assigned_on > day or _on(case.closed_on, day):
        return None
    late = (day - case.due_date).days
    if late > thresholds.case_close_days:
        return Finding("red", ("unclosed", case.case_id, case.due_date.isoformat()))
    if late > 0 and not any(on <= day for on in case.responded_on):
        return Finding("yellow", ("unanswered", case.case_id, case.due_date.isoformat()))
    return None


def supplied_by(approval: ApprovalFact, day: date) -> Decimal:
    return sum((area for on, area in approval.supplied if on <= day), Decimal(0))


def land_unsupplied_level(approval: ApprovalFact, day: date, thresholds: Thresholds) -> Finding | None:
    """批而未供: land approved of which some is not supplied, more than `land_unsupplied_yellow_days`
    (red: `land_unsupplied_red_days`) after the approval."""
    if approval.approved_on > day:
        return None
    left = approval.area - supplied_by(approval, day)
    if left <= 0:
        return None
    held = (day - approval.approved_on).days
    level = ("red" if held > thresholds.land_unsupplied_red_days else
             "yellow" if held > thresholds.land_unsupplied_yellow_days else None)
    if level is None:
        return None
    return Finding(level, (approval.approval_id, approval.approved_on.isoformat(), str(approval.area), str(left)))


#: What each rule's detail says, from its finding's `about`, but for the days it counts (see `detail`): the
#: one statement of every alert, worded by the catalogue (`infra.catalogue.said`).
DETAILS: dict[str, Callable[[tuple[str, ...]], Detail]] = {
    "not_started": lambda about: Detail("not_started.late", {
        "planned_start": about[0], "factors": about[1].split(", ")}),
    "lagging": lambda about: Detail("lagging.behind", {
        "done": about[0], "year": int(about[1]), "expected": about[2], "months": int(about[3]), "gap": about[4]}),
    "issue_overdue": lambda about: Detail("issue_overdue.unresolved", {
        "issue": about[0], "title": about[1], "due_date": about[2]}),
    "reduction_overdue": lambda about: (
        Detail("reduction_overdue.due", {"reduction": about[1], "due_date": about[2]}) if about[0] == "due" else
        Detail("reduction_overdue.project_completed", {"reduction": about[1], "completed_on": about[2]})),
    "funds_idle": lambda about: Detail("funds_idle.undisbursed", {
        "grant": about[0], "granted_on": about[1], "amount": about[2], "disbursed": about[3]}),
    "land_idle": lambda about: Detail("land_idle.not_started", {
        "grant": about[0], "start_by": about[1], "area": about[2]}),
    "energy_idle": lambda about: Detail("energy_idle.not_started", {
        "grant": about[0], "granted_on": about[1], "tce": about[2]}),
    "land_unsupplied": lambda about: Detail("land_unsupplied.left", {
        "approval": about[0], "approved_on": about[1], "area": about[2], "unsupplied": about[3]}),
    "supervision_overdue": lambda about: Detail(f"supervision_overdue.{about[0]}", {
        "case": about[1], "due_date": about[2]}),
}
#: The rules whose detail counts days (`days`), and where from: the index in the finding's `about` of that
#: day. The count is the one thing an alert says that changes from day to day within a stretch.
COUNTS_FROM: dict[str, int] = {"not_started": 0, "issue_overdue": 2, "funds_idle": 1, "land_idle": 1,
                               "energy_idle": 1, "land_unsupplied": 1, "supervision_overdue": 2}


def counted_from(rule: str, about: tuple[str, ...]) -> date | None:
    """The day the detail of a finding of `rule` counts its days from (None: it counts none)."""
    at = COUNTS_FROM.get(rule)
    return None if at is None else date.fromisoformat(about[at])


def detail(rule: str, about: tuple[str, ...], day: date) -> Detail:
    """What an alert of `rule` with this finding says on `day`."""
    fixed, start = DETAILS[rule](about), counted_from(rule, about)
    return fixed if start is None else Detail(fixed.code, {**fixed.params, "days": (day - start).days})


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One alert a project (or an approval) may have: its rule, the issue, reduction, grant, case or
    approval it concerns, and the days on which its finding can change (it holds from each such day
    until the next)."""

    rule: str
    ref: str | None
    finding_on: Callable[[date], Finding | None]
    points: tuple[date, ...]
    grant_id: str | None = None  # the grant it concerns, and its factor (v1.2)
    factor: str | None = None


def _days(*points: date | None) -> tuple[date, ...]:
    return tuple(sorted({p for p in points if p is not None}))


def checks(facts: ProjectFacts, thresholds: Thresholds, *, lagging_years: Iterable[int] = ()) -> list[Check]:
    """The alerts this project may have. Lagging is measured within a year (its first month counts
    once its report is due), so only the due days of `lagging_years` are among its days of change.
    Each check's days of change include those of the supervision cases of its rule and grant, which
    an alert names (`case_id`)."""
    lifecycle = [facts.registered_on, facts.started_on, facts.completed_on, facts.cancelled_on]
    grant_days = [day for g in facts.grants for day in (g.granted_on, g.reclaimed_on)]
    starts = [facts.planned_start, *(start for _, start in facts.start_amendments)]
    started = facts.started_on
    found = [Check("not_started", None, lambda day: not_started_level(facts, day, thresholds), _days(
        *lifecycle, *grant_days, *(on for on, _ in facts.start_amendments),
        *(ps + DAY * (n + 1) for ps in starts for n in (thresholds.start_yellow_days, thresholds.start_red_days))))]
    if started is not None:
        reports_due = [point for year in lagging_years if year >= started.year
                       for point in _reports_due(year, thresholds.report_due_days)]
        found.append(Check("lagging", None, lambda day: lagging_level(facts, day, thresholds), _days(
            *lifecycle, *(p.set_on for p in facts.plans), *(r.reported_on for r in facts.reports), *reports_due)))
    for issue in facts.issues:
        found.append(Check("issue_overdue", issue.issue_id,
                           lambda day, i=issue: issue_level(facts, i, day, thresholds),  # type: ignore[misc]
                           _days(*lifecycle, issue.resolved_on, *(point for on, due in issue.escalations for point in (
                               on, due + DAY, due + DAY * thresholds.issue_red_days)))))
    for reduction in facts.reductions.values():
        found.append(Check("reduction_overdue", reduction.reduction_id,
                           lambda day, r=reduction: reduction_level(facts, r, day, thresholds),  # type: ignore[misc]
                           _days(*lifecycle, *grant_days, reduction.completed_on, reduction.due_date)))
    found += _grant_checks(facts, thresholds)
    for case in facts.cases:
        found.append(Check("supervision_overdue", case.case_id,
                           lambda day, c=case: supervision_overdue_level(c, day, thresholds),  # type: ignore[misc]
                           _days(case.assigned_on, case.closed_on, *case.responded_on, case.due_date + DAY,
                                 case.due_date + DAY * (thresholds.case_close_days + 1)),
                           case.grant_id, _factor_of(facts, case.grant_id)))
    return [replace(c, points=_days(*c.points, *facts.case_days(c.rule, c.grant_id))) for c in found]


def _factor_of(facts: ProjectFacts, grant_id: str | None) -> str | None:
    return next((g.factor for g in facts.grants if g.grant_id == grant_id), None)


def _grant_checks(facts: ProjectFacts, thresholds: Thresholds) -> list[Check]:
    """The factor-level rules of the project's grants (v1.2): funds, land and energy lying idle."""
    found = []
    for g in facts.grants:
        held = (g.granted_on, g.reclaimed_on)
        if g.factor == "funds":
            found.append(Check("funds_idle", g.grant_id,
                               lambda day, g=g: funds_idle_level(g, day, thresholds),  # type: ignore[misc]
                               _days(*held, *(on for on, _ in g.disbursed),
                                     *(g.granted_on + DAY * (n + 1)
                                       for n in (thresholds.funds_idle_yellow_days, thresholds.funds_idle_red_days))),
                               g.grant_id, g.factor))
        elif g.factor == "land":
            start_by = facts.start_by(g)
            found.append(Check("land_idle", g.grant_id,
                               lambda day, g=g: land_idle_level(facts, g, day, thresholds),  # type: ignore[misc]
                               _days(*held, facts.started_on, *(start_by + DAY * (n + 1) for n in (
                                   0, thresholds.land_idle_red_days, thresholds.land_reclaimable_days))),
                               g.grant_id, g.factor))
        elif g.factor == "energy":
            found.append(Check("energy_idle", g.grant_id,
                               lambda day, g=g: energy_idle_level(facts, g, day, thresholds),  # type: ignore[misc]
                               _days(*held, facts.started_on, *(g.granted_on + DAY * (n + 1) for n in (
                                   thresholds.energy_idle_yellow_days, thresholds.energy_idle_red_days))),
                               g.grant_id, g.factor))
    return found


def approval_checks(approval: ApprovalFact, thresholds: Thresholds) -> list[Check]:
    """The alert an approval may have (批而未供)."""
    return [Check("land_unsupplied", approval.approval_id,
                  lambda day: land_unsupplied_level(approval, day, thresholds),
                  _days(*(on for on, _ in approval.supplied), *(approval.approved_on + DAY * (n + 1) for n in (
                      thresholds.land_unsupplied_yellow_days, thresholds.land_unsupplied_red_days))),
                  None, "land")]


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
                                detail(check.rule, found.about, as_of), check.ref, facts.department,
                                facts.leader_on(as_of), check.grant_id, check.factor, found.reclaimable,
                                facts.case_on(check.rule, check.grant_id, as_of), facts.code))
    return alerts


def evaluate_approval(approval: ApprovalFact, as_of: date, thresholds: Thresholds = Thresholds()) -> list[Alert]:
    """The alert an approval has on `as_of` (批而未供), about no project: `subject` is the approval."""
    return [Alert(None, check.rule, found.level, _since(check, found.level, as_of), approval.district,
                  detail(check.rule, found.about, as_of), check.ref, APPROVAL_DEPARTMENT, None, check.grant_id,
                  check.factor, found.reclaimable, None, approval.approval_id)
            for check in approval_checks(approval, thresholds) if (found := check.finding_on(as_of)) is not None]


# --- the timeline: every alert of a project over all days, for an index ---------------------


@dataclass(frozen=True)
class Stretch:
    """An alert over consecutive days, `first` to `last` (None: on and on, until the facts change),
    through which its level, `about`, the responsible leader, whether it is reclaimable and the open
    case about it stay the same."""

    rule: str
    ref: str | None
    level: str
    since: date  # the day it reached this level (a stretch may continue an earlier one at the same level)
    first: date
    last: date | None
    about: tuple[str, ...]
    leader: str | None
    grant_id: str | None = None
    factor: str | None = None
    reclaimable: bool = False
    case_id: str | None = None

    def alert(self, code: str | None, district: str, department: str, day: date,
              subject: str | None = None) -> Alert:
        """The alert on a day of this stretch, as `evaluate` gives it (`code` None: an approval's, `subject`)."""
        return Alert(code, self.rule, self.level, self.since, district, detail(self.rule, self.about, day), self.ref,
                     department, self.leader, self.grant_id, self.factor, self.reclaimable, self.case_id,
                     subject or code)


def timeline(facts: ProjectFacts, thresholds: Thresholds = Thresholds()) -> list[Stretch]:
    """Every alert the project ever has, as it stands on these facts: `evaluate(facts, day)` for any
    day, as stretches. Nothing changes between the days of change but the day-count in a detail."""
    years = {p.year for p in facts.plans}
    leader_days = sorted({day for g in facts.grants if g.leader for day in (g.granted_on, g.reclaimed_on) if day})
    return _stretches(checks(facts, thresholds, lagging_years=years), leader_days, facts.leader_on, facts.case_on)


def approval_timeline(approval: ApprovalFact, thresholds: Thresholds = Thresholds()) -> list[Stretch]:
    """Every alert the approval ever has: `evaluate_approval(approval, day)` for any day, as stretches."""
    return _stretches(approval_checks(approval, thresholds), [], lambda day: None, lambda rule, grant, day: None)


def _stretches(found: list[Check], leader_days: list[date], leader_on: Callable[[date], str | None],
               case_on: Callable[[str, str | None, date], str | None]) -> list[Stretch]:
    stretches: list[Stretch] = []
    for check in found:
        points = sorted({*check.points, *leader_days})
        previous: Stretch | None = None
        for n, first in enumerate(points):
            last = points[n + 1] - DAY if n + 1 < len(points) else None
            finding = check.finding_on(first)
            if finding is None:
                previous = None
                continue
            leader, case_id = leader_on(first), case_on(check.rule, check.grant_id, first)
            if previous is not None and (previous.level, previous.about, previous.leader, previous.reclaimable,
                                         previous.case_id) == (finding.level, finding.about, leader,
                                                               finding.reclaimable, case_id):
                previous = stretches[-1] = replace(previous, last=last)
                continue
            since = previous.since if previous is not None and previous.level == finding.level else first
            previous = Stretch(check.rule, check.ref, finding.level, since, first, last, finding.about, leader,
                               check.grant_id, check.factor, finding.reclaimable, case_id)
            stretches.append(previous)
    return stretches
