"""Read models (读模型): libraries, the stage board, the factor ledger, investment, alerts."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from fastapi.responses import Response

from api import schemas
from api.auth import Caller, Config, Reads
from api.errors import problems
from api.json import JSON
from api.params import (
    After,
    AsOf,
    By,
    Department,
    District,
    Factor,
    Level,
    LibraryPath,
    Limit,
    ProjectCode,
    Rule,
    Sector,
    Stage,
    Year,
)
from infra.clock import city_today
from projections import factor_ledger, investment, libraries, parked, sedimentation, stages

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
               level: Level = None, rule: Rule = None) -> Response:
    """Sedimentation alerts (要素沉淀) as of a business date (default today, city time), from the read model."""
    when: date = as_of or city_today()
    found = sedimentation.alerts(reads.db, reads.tables(sedimentation.Sedimentation), when, settings.thresholds,
                                 district=district, level=level, rule=rule)
    return JSON({"as_of": when, "alerts": [
        sedimentation.alert_json(a.project_code, a.rule, a.ref, a.level, a.since, a.detail, district=a.district)
        for a in found]})


@router.get("/v1/parked", response_model=schemas.ParkedResponse, responses=PROBLEMS)
def get_parked(_: Caller, reads: Reads, after: After = 0, limit: Limit = 100) -> Response:
    """Kafka messages waiting for a prerequisite (a project or a reduction not registered yet), in the
    order parked: each is tried again after every later batch, and rejected for good after its window."""
    found = parked.waiting(reads.db, reads.tables(parked.Parked), after, limit)
    return JSON({"parked": found, "next_after": found[-1]["position"] if found else after})

