"""Read models (读模型): libraries, the stage board, the factor ledger, investment, alerts, the monthly report."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api import exports, schemas
from api.auth import Caller, Config
from api.errors import ProblemError, problems
from api.json import JSON
from api.listings import Filters
from api.params import (
    AdviceFactor,
    After,
    AsOf,
    By,
    Format,
    Lang,
    LibraryPath,
    Limit,
    Month,
    ReportFormat,
    RequiredYear,
    Total,
    Year,
)
from api.reading import Reading, View, answered
from infra.catalogue import detail_json, name_of, said
from infra.clock import city_today
from infra.presenter import withheld
from infra.settings import Settings
from projections import factor_ledger, investment, libraries, parked, sedimentation, stages, warnings
from service.authorisation import may_read_parked

router = APIRouter(tags=["read models"])
PROBLEMS = problems(400, 401, 503)
LISTS = {**PROBLEMS, **exports.DOWNLOADS}


@router.get("/v1/libraries/{library}", response_model=schemas.LibraryResponse, responses=LISTS)
@answered
def get_library(request: Request, library: LibraryPath, _: Caller, view: View(libraries.Libraries), settings: Config,
                asked: Filters(libraries.LISTING), format: Format = "json", lang: Lang = "zh") -> Response:
    """Members of a reserve library, filterable by district (一纵), sector and department (一横), with totals."""
    found = libraries.members(view.of(libraries.Libraries), library, asked)
    return exports.download(libraries.LISTING, found, format, lang, asked=asked, issuer=settings.issuer,
                            name=f"library-{library}",
                            title=name_of("library", library, lang))


@router.get("/v1/libraries/{library}/matrix", response_model=schemas.MatrixResponse, responses=PROBLEMS)
@answered
def get_matrix(request: Request, library: LibraryPath, _: Caller, view: View(libraries.Libraries)) -> Response:
    """District × sector counts and total investment of a library (一纵一横)."""
    return JSON(libraries.matrix(view.of(libraries.Libraries), library))


@router.get("/v1/stages", response_model=schemas.StagesResponse, responses=LISTS)
@answered
def get_stages(request: Request, _: Caller, view: View(stages.Stages), asked: Filters(stages.LISTING),
               settings: Config, format: Format = "json", lang: Lang = "zh") -> Response:
    """Projects per stage with days in stage and the stage's factor checklist (satisfied / missing)."""
    found = stages.board(view.of(stages.Stages), asked, city_today())
    return exports.download(stages.LISTING, found, format, lang, asked=asked, issuer=settings.issuer)


@router.get("/v1/ledger", response_model=schemas.LedgerResponse, responses=LISTS)
@answered
def get_ledger(request: Request, _: Caller, view: View(factor_ledger.FactorLedger, sedimentation.Sedimentation),
               settings: Config, asked: Filters(factor_ledger.LISTING), of: Filters(factor_ledger.PROJECT_GRANTS),
               format: Format = "json", lang: Lang = "zh") -> Response:
    """The factor ledger per district × year × factor, as of a business date (default today): funds
    disbursed, land approved and not supplied by then, and what lies idle under that day's factor-level
    alerts; with `project`, that project's grants."""
    tables = view.of(factor_ledger.FactorLedger)
    if of["project"] is not None:
        grants = {"project": of["project"], "grants": factor_ledger.project_grants(tables, of["project"])}
        return exports.download(factor_ledger.PROJECT_GRANTS, grants, format, lang, asked=of, issuer=settings.issuer)
    rows = {"rows": factor_ledger.ledger_on(tables, view.of(sedimentation.Sedimentation), asked, settings.thresholds)}
    return exports.download(factor_ledger.LISTING, rows, format, lang, asked=asked, issuer=settings.issuer)


@router.get("/v1/stats/investment", response_model=schemas.InvestmentResponse, responses=PROBLEMS)
@answered
def get_investment(request: Request, _: Caller,
                   view: View(investment.Investment), by: By = "sector", year: Year = None) -> Response:
    """Planned and completed investment by sector or district, per year."""
    return JSON(investment.statistics(view.db, view.tables(investment.Investment), by, year))


@router.get("/v1/alerts", response_model=schemas.AlertsResponse, responses=LISTS)
@answered
def get_alerts(request: Request, _: Caller, view: View(sedimentation.Sedimentation), settings: Config,
               asked: Filters(sedimentation.ALERTS), format: Format = "json", lang: Lang = "zh") -> Response:
    """Sedimentation alerts (要素沉淀) as of a business date (default today, city time), from the read model."""
    return exports.download(sedimentation.ALERTS, alerts_on(view, settings, asked), format, lang, asked=asked,
                            issuer=settings.issuer)


def alerts_on(view: Reading, settings: Settings, asked: Mapping[str, Any]) -> dict[str, Any]:
    found = sedimentation.listed_alerts(view.of(sedimentation.Sedimentation), asked, settings.thresholds)
    return sedimentation.ALERTS.body(found, asked)


@router.get("/v1/parked", response_model=schemas.ParkedResponse, responses=PROBLEMS)
@answered(per_portal=True)
def get_parked(request: Request, who: Caller,
               view: View(parked.Parked), after: After = 0, limit: Limit = 100) -> Response:
    """Kafka messages waiting for a prerequisite (a project or a reduction not registered yet), in the
    order parked: each is tried again after every later batch, and rejected for good after its window.

    A portal's token sees the body and reason of the messages it sent only (as its department); of
    the others, they are null and named in `withheld`."""
    found = parked.waiting(view.db, view.tables(parked.Parked), after, limit)
    for row in found:
        if not may_read_parked(who, row["body"]):
            withheld(row)
    return JSON({"parked": found, "next_after": found[-1]["position"] if found else after})


@router.get("/v1/warnings", response_model=schemas.WarningsResponse, responses=LISTS)
@answered
def get_warnings(request: Request, _: Caller, view: View(warnings.Warnings), asked: Filters(warnings.LISTING),
                 settings: Config, format: Format = "json", lang: Lang = "zh") -> Response:
    """Policy priorities messages did not follow (accepted, and flagged), in the order stored."""
    found = warnings.listed(view.of(warnings.Warnings), asked, asked["after"], asked["limit"])
    return exports.download(warnings.LISTING, warnings.LISTING.body(found, asked, asked["after"]), format, lang,
                            asked=asked, issuer=settings.issuer)


@router.get("/v1/rankings/districts", response_model=schemas.RankingResponse, responses=LISTS)
@answered
def get_ranking(request: Request, _: Caller, view: View(sedimentation.Sedimentation), settings: Config,
                asked: Filters(sedimentation.RANKING), format: Format = "json", lang: Lang = "zh") -> Response:
    """大干大支持: districts by how their annual-library projects start and invest, as of a business date
    (default today); the score is explained in the README."""
    return exports.download(sedimentation.RANKING, ranking_on(view, settings, asked), format, lang, asked=asked,
                            issuer=settings.issuer)


def ranking_on(view: Reading, settings: Settings, asked: Mapping[str, Any]) -> dict[str, Any]:
    found = sedimentation.listed_ranking(view.of(sedimentation.Sedimentation), asked, settings.thresholds)
    return sedimentation.RANKING.body(found, asked)


@router.get("/v1/allocation/advice", response_model=schemas.AdviceResponse, responses=PROBLEMS)
@answered
def get_advice(request: Request, _: Caller, view: View(sedimentation.Sedimentation), settings: Config,
               year: RequiredYear, factor: AdviceFactor, total: Total,
               as_of: AsOf = None) -> Response:
    """A city total of land, energy or special-bond quota split over the ranked districts by weight =
    score × annual planned investment × (1 − the district's idle share of that factor), the idle share
    being its projects' quantity of the factor under an active factor-level alert (land_idle,
    energy_idle; for special bonds, funds_idle on funds from special bonds) over all of it granted to
    them and not reclaimed. Advice only: nothing is stored."""
    when: date = as_of or city_today()
    amount = Decimal(repr(total))
    shares = sedimentation.advice(view.of(sedimentation.Sedimentation), year, factor, amount, when,
                                  settings.thresholds)
    return JSON({"year": year, "as_of": when, "factor": factor, "total": amount,
                 "shares": [{**share.__dict__, **detail_json(share.reason, "reason")} for share in shares]})


@router.get("/v1/reports/monthly", response_class=Response, responses={
    **PROBLEMS, **problems(409), 200: {"description": "the month's report, one workbook",
                      "content": {exports.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}})
@answered
def get_monthly_report(request: Request, _: Caller, view: View(factor_ledger.FactorLedger, sedimentation.Sedimentation,
                                                    warnings.Warnings),
                       settings: Config, month: Month, format: ReportFormat = "xlsx", lang: Lang = "zh") -> Response:
    """The month's report to the city government (月报), for a month that is over (a month not over yet is
    409 `month_not_over`): projects by status and by reserve library, alerts per district and level,
    the year's energy and land quota use, the district ranking, the alerts and the factor ledger, all
    as of the month's last day, and the warnings of the month; titled, with its issuing unit
    (`YAOSU_ISSUER`) and the day it was drawn up."""
    year, number = int(month[:4]), int(month[5:])
    first, end = date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])
    today = city_today()
    if end >= today:
        raise not_over(month, end, lang)
    facts = view.of(sedimentation.Sedimentation)
    return exports.monthly_report(
        month, lang, issuer=settings.issuer, issued_on=today,
        statuses=sedimentation.statuses_on(facts, end), library_counts=sedimentation.libraries_on(facts, end),
        alerts=alerts_on(view, settings, {"as_of": end}), ranking=ranking_on(view, settings, {"year": year, "as_of": end}),
        ledger={"rows": factor_ledger.ledger_on(view.of(factor_ledger.FactorLedger), facts,
                                                {"year": year, "as_of": end}, settings.thresholds)},
        warnings={"warnings": warnings_between(view, first, end)})


def not_over(month: str, end: date, lang: str) -> ProblemError:
    """A report asked for before its month is over: its figures would change, so it is refused (409: the
    report is not there yet, not a wrong question), saying from when it can be had, in the report's language."""
    ready = end + timedelta(days=1)
    params = {"year": int(month[:4]), "month": int(month[5:]), "from": ready.isoformat()}  # 2026, 11
    return ProblemError(409, "month_not_over", said("report.month_not_over", params, lang), month=month,
                        available_from=ready.isoformat())


def warnings_between(view: Reading, first: date, last: date) -> list[dict[str, Any]]:
    """Every warning whose business date falls in [first, last], page by page."""
    tables, found, after = view.of(warnings.Warnings), [], 0
    while page := warnings.listed(tables, {"from": first, "to": last}, after, 1000):
        found += page
        after = page[-1]["position"]
    return found
