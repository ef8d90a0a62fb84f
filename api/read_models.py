"""Read models (读模型): libraries, the stage board, the factor ledger, investment, alerts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fastapi import APIRouter
from fastapi.responses import Response

from api import schemas
from api.auth import Caller, Config, Reads
from api.errors import problems
from api.json import JSON
from api.params import (
    AdviceFactor,
    After,
    AsOf,
    By,
    Department,
    District,
    Factor,
    From,
    Level,
    LibraryPath,
    Limit,
    ProjectCode,
    RequiredYear,
    Rule,
    Sector,
    Sender,
    Stage,
    To,
    Total,
    WarningCode,
    Year,
)
from domain.ranking import allocation_advice, rank_districts
from infra.clock import city_today
from projections import factor_ledger, investment, libraries, parked, sedimentation, stages, warnings

router = APIRouter(tags=["read models"])
PROBLEMS = problems(400, 401, 503)


@router.get("/v1/libraries/{library}", response_model=schemas.LibraryResponse, responses=PROBLEMS)
def get_library(library: LibraryPath, _: Caller, reads: Reads, district: District = None, sector: Sector = None,
                department: Department = None) -> Response:
    """Members of a reserve library, filterable by district (一纵), sector and department (一横), with totals."""
    filters = {"district": district, "sector": sector, "department": department}
    return JSON(libraries.members(reads.db, reads.tables(libraries.Libraries), library, filters))


@router.get("/v1/libraries/{library}/matrix", response_model=schemas.MatrixResponse, responses=PROBLEMS)
def get_matrix(library: LibraryPath, _: Caller, reads: Reads) -> Response:
    """District × sector counts and total investment of a library (一纵一横)."""
    return JSON(libraries.matrix(reads.db, reads.tables(libraries.Libraries), library))


@router.get("/v1/stages", response_model=schemas.StagesResponse, responses=PROBLEMS)
def get_stages(_: Caller, reads: Reads, stage: Stage = None, district: District = None) -> Response:
    """Projects per stage with days in stage and the stage's factor checklist (satisfied / missing)."""
    return JSON(stages.board(reads.db, reads.tables(stages.Stages), stage, district, city_today()))


@router.get("/v1/ledger", response_model=schemas.LedgerResponse, responses=PROBLEMS)
def get_ledger(_: Caller, reads: Reads, district: District = None, year: Year = None, factor: Factor = None,
               project: ProjectCode = None) -> Response:
    """The factor ledger per district × year × factor; with `project`, that project's grants."""
    tables = reads.tables(factor_ledger.FactorLedger)
    if project is not None:
        return JSON({"project": project, "grants": factor_ledger.project_grants(reads.db, tables, project)})
    return JSON({"rows": factor_ledger.summary(reads.db, tables, district, year, factor)})


@router.get("/v1/stats/investment", response_model=schemas.InvestmentResponse, responses=PROBLEMS)
def get_investment(_: Caller, reads: Reads, by: By = "sector", year: Year = None) -> Response:
    """Planned and completed investment by sector or district, per year."""
    return JSON(investment.statistics(reads.db, reads.tables(investment.Investment), by, year))


@router.get("/v1/alerts", response_model=schemas.AlertsResponse, responses=PROBLEMS)
def get_alerts(_: Caller, reads: Reads, settings: Config, as_of: AsOf = None, district: District = None,
               level: Level = None, rule: Rule = None, department: Department = None) -> Response:
    """Sedimentation alerts (要素沉淀) as of a business date (default today, city time), from the read model."""
    when: date = as_of or city_today()
    found = sedimentation.alerts(reads.db, reads.tables(sedimentation.Sedimentation), when, settings.thresholds,
                                 district=district, level=level, rule=rule, department=department)
    return JSON({"as_of": when, "alerts": [
        sedimentation.alert_json(a.project_code, a.rule, a.ref, a.level, a.since, a.detail, district=a.district,
                                 department=a.department, leader=a.leader)
        for a in found]})


@router.get("/v1/parked", response_model=schemas.ParkedResponse, responses=PROBLEMS)
def get_parked(_: Caller, reads: Reads, after: After = 0, limit: Limit = 100) -> Response:
    """Kafka messages waiting for a prerequisite (a project or a reduction not registered yet), in the
    order parked: each is tried again after every later batch, and rejected for good after its window."""
    found = parked.waiting(reads.db, reads.tables(parked.Parked), after, limit)
    return JSON({"parked": found, "next_after": found[-1]["position"] if found else after})


@router.get("/v1/warnings", response_model=schemas.WarningsResponse, responses=PROBLEMS)
def get_warnings(_: Caller, reads: Reads, code: WarningCode = None, district: District = None, department: Sender = None,
                 from_: From = None, to: To = None, after: After = 0, limit: Limit = 100) -> Response:
    """Policy priorities messages did not follow (accepted, and flagged), in the order stored."""
    filters = {"code": code, "district": district, "department": department, "from": from_, "to": to}
    found = warnings.listed(reads.db, reads.tables(warnings.Warnings), filters, after, limit)
    return JSON({"warnings": found, "next_after": found[-1]["position"] if found else after})


@router.get("/v1/rankings/districts", response_model=schemas.RankingResponse, responses=PROBLEMS)
def get_ranking(_: Caller, reads: Reads, settings: Config, year: RequiredYear, as_of: AsOf = None) -> Response:
    """大干大支持: districts by how their annual-library projects start and invest, as of a business date
    (default today); the score is explained in the README."""
    when: date = as_of or city_today()
    facts = sedimentation.load_facts(reads.db, reads.tables(sedimentation.Sedimentation))
    return JSON({"year": year, "as_of": when,
                 "districts": [row.__dict__ for row in rank_districts(facts, year, when, settings.thresholds)]})


@router.get("/v1/allocation/advice", response_model=schemas.AdviceResponse, responses=PROBLEMS)
def get_advice(_: Caller, reads: Reads, settings: Config, year: RequiredYear, factor: AdviceFactor, total: Total,
               as_of: AsOf = None) -> Response:
    """A city total of land, energy or special-bond quota split over the ranked districts by score ×
    annual planned investment. Advice only: nothing is stored."""
    when: date = as_of or city_today()
    facts = sedimentation.load_facts(reads.db, reads.tables(sedimentation.Sedimentation))
    ranking = rank_districts(facts, year, when, settings.thresholds)
    amount = Decimal(repr(total))
    return JSON({"year": year, "as_of": when, "factor": factor, "total": amount,
                 "shares": [share.__dict__ for share in allocation_advice(ranking, amount)]})

