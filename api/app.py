"""The HTTP API of the contract (`docs/contract.md`), under `/v1`."""


import logging
from datetime import date, datetime
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import render, schemas
from domain import codes
from domain.codes import ProjectCode
from domain.supervision import LEVELS, RULES
from infra.events_table import tracked_positions
from infra.ledger import Ledger
from infra.settings import Principal, Settings
from projections import investment, libraries, sedimentation, stages
from projections import ledger as factor_ledger
from projections.read import ReadModels
from projections.runner import NotBuilt, status

log = logging.getLogger("yaosu.api")

MAX_BODY_BYTES = 8 * 1024 * 1024


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return render.dumps(content)


class ProblemError(Exception):
    """An error answered as `application/problem+json` with a stable `code`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 413: "Payload Too Large", 422: "Unprocessable Content",
          500: "Internal Server Error", 503: "Service Unavailable"}


def problem(status: int, code: str, detail: str) -> Response:
    body = {"type": f"https://yaosu.example/problems/{code}", "title": TITLES.get(status, "Error"),
            "status": status, "detail": detail, "code": code}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json", headers=headers)


def create_app(ledger: Ledger, settings: Settings, read_models: ReadModels | None = None) -> FastAPI:
    app = FastAPI(
        title="Yaosu",
        version="1",
        description="Ledger of investment projects and the factors guaranteed to them (要素跟着项目走).",
        default_response_class=JSON,
    )
    app.state.ledger = ledger

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, error: ProblemError) -> Response:
        return problem(error.status, error.code, error.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem(400, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return problem(error.status_code, code, str(error.detail))

    @app.exception_handler(NotBuilt)
    async def _not_built(_: Request, error: NotBuilt) -> Response:
        return problem(503, "read_model_not_ready", str(error))

    @app.exception_handler(psycopg.errors.UndefinedColumn)
    @app.exception_handler(psycopg.errors.UndefinedTable)
    async def _reshaped(_: Request, error: Exception) -> Response:
        # A new version of a read model with other columns is being built; the serving one
        # cannot answer this code's query until it is swapped in.
        return problem(503, "read_model_not_ready", "this read model is being rebuilt; try again shortly")

    @app.exception_handler(Exception)
    async def _crash(_: Request, error: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "internal_error", "the server failed; nothing was stored by this request")

    def principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ProblemError(401, "unauthenticated", "send Authorization: Bearer <token>")
        found = settings.tokens.get(token.strip())
        if found is None:
            raise ProblemError(401, "unauthenticated", "unknown token")
        return found

    def reader(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in ("supervisor", "admin"):
            raise ProblemError(403, "forbidden", "only supervisors and admins read the ledger")
        return who

    def project_code(code: str) -> str:
        try:
            return ProjectCode(code).value
        except ValueError as error:
            raise ProblemError(400, "invalid_project_code", str(error)) from None

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> Response:
        try:
            head = ledger.head()
        except Exception as error:  # noqa: BLE001 - any store failure means not ready
            log.warning("readiness check failed: %s", error)
            return problem(503, "store_unavailable", f"the event store does not answer ({type(error).__name__})")
        return JSON({"status": "ready", "head": head})

    @app.post(
        "/v1/messages",
        tags=["messages"],
        responses={200: {"model": schemas.SubmitResponse}, **schemas.PROBLEMS,
                   413: {"model": schemas.Problem, "description": "too many envelopes or bytes"}},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/MessagesBody"}}}}},
    )
    async def submit(request: Request, who: Annotated[Principal, Depends(principal)]) -> Response:
        """Submit one envelope or an array of up to 1,000; one result per envelope, in order."""
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:  # refuse before reading it
            raise ProblemError(413, "body_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise ProblemError(413, "body_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ProblemError(400, "malformed_json", f"the body is not JSON: {error}") from None
        if isinstance(body, dict):
            bodies = [body]
        elif isinstance(body, list):
            bodies = body
        else:
            raise ProblemError(400, "not_an_envelope", "the body must be an envelope object or an array of them")
        if len(bodies) > settings.max_batch:
            raise ProblemError(413, "batch_too_large",
                               f"{len(bodies)} envelopes; a request carries at most {settings.max_batch}")
        results = await run_in_threadpool(ledger.submit, bodies, principal=who, channel="http")
        return JSON({"results": [r.as_json() for r in results]})

    @app.get("/v1/projects/{code}", tags=["queries"],
             responses={200: {"model": schemas.ProjectState}, **schemas.PROBLEMS})
    def get_project(
        code: str,
        _: Annotated[Principal, Depends(reader)],
        as_of: Annotated[date | None, Query(description="state at the end of this business date")] = None,
    ) -> Response:
        """The project's current state, or its state on `as_of` (events that occurred by then)."""
        project = ledger.project(project_code(code), as_of)
        if project is None:
            when = f" on {as_of}" if as_of else ""
            raise ProblemError(404, "unknown_project", f"no project {code} was registered{when}")
        return JSON(render.project_json(project, as_of))

    @app.get("/v1/projects/{code}/history", tags=["queries"],
             responses={200: {"model": schemas.HistoryResponse}, **schemas.PROBLEMS})
    def get_history(code: str, _: Annotated[Principal, Depends(reader)]) -> Response:
        """The audit trail: every event of the project in order, with business and record time."""
        items = ledger.history(project_code(code))
        if not items:
            raise ProblemError(404, "unknown_project", f"no project {code} is registered")
        return JSON({"code": code, "events": [render.event_json(i) for i in items]})

    @app.get("/v1/rejections", tags=["queries"],
             responses={200: {"model": schemas.RejectionsResponse}, **schemas.PROBLEMS})
    def get_rejections(
        _: Annotated[Principal, Depends(reader)],
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        """Rejected messages with code, reason and the original body, in the order received."""
        items = ledger.rejections(after, limit)
        return JSON({"rejections": [render.rejection_json(i) for i in items],
                     "next_after": items[-1].position if items else after})

    @app.get("/v1/events", tags=["queries"],
             responses={200: {"model": schemas.FeedResponse}, **schemas.PROBLEMS})
    def get_events(
        _: Annotated[Principal, Depends(reader)],
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        """The global event feed in store order, from after a position."""
        items = ledger.feed(after, limit)
        return JSON({"events": [render.event_json(i) for i in items],
                     "next_after": items[-1].position if items else after, "head": ledger.head()})

    def reads() -> ReadModels:
        if read_models is None:
            raise ProblemError(503, "read_model_not_ready", "this store keeps no read models")
        return read_models

    def choice(name: str, value: str | None, allowed: Any) -> str | None:
        if value is not None and value not in allowed:
            raise ProblemError(400, "invalid_request", f"{name}: {value!r} is not one of {', '.join(allowed)}")
        return value

    def today() -> date:
        return datetime.now(codes.CITY_TZ).date()

    @app.get("/v1/libraries/{library}", tags=["read models"],
             responses={200: {"model": schemas.LibraryResponse}, **schemas.PROBLEMS})
    def get_library(
        library: str, _: Annotated[Principal, Depends(reader)],
        district: str | None = None, sector: str | None = None, department: str | None = None,
    ) -> Response:
        """Members of a reserve library, filterable by district (一纵), sector and department (一横), with totals."""
        choice("library", library, codes.LIBRARIES)
        filters = {"district": district, "sector": sector, "department": department}
        return JSON(libraries.members(reads().db, reads().tables(libraries.Libraries), library, filters))

    @app.get("/v1/libraries/{library}/matrix", tags=["read models"],
             responses={200: {"model": schemas.MatrixResponse}, **schemas.PROBLEMS})
    def get_matrix(library: str, _: Annotated[Principal, Depends(reader)]) -> Response:
        """District × sector counts and total investment of a library (一纵一横)."""
        choice("library", library, codes.LIBRARIES)
        return JSON(libraries.matrix(reads().db, reads().tables(libraries.Libraries), library))

    @app.get("/v1/stages", tags=["read models"],
             responses={200: {"model": schemas.StagesResponse}, **schemas.PROBLEMS})
    def get_stages(_: Annotated[Principal, Depends(reader)], stage: str | None = None,
                   district: str | None = None) -> Response:
        """Projects per stage with days in stage and the stage's factor checklist (satisfied / missing)."""
        choice("stage", stage, codes.STAGES)
        return JSON(stages.board(reads().db, reads().tables(stages.Stages), stage, district, today()))

    @app.get("/v1/ledger", tags=["read models"],
             responses={200: {"model": schemas.LedgerResponse}, **schemas.PROBLEMS})
    def get_ledger(_: Annotated[Principal, Depends(reader)], district: str | None = None, year: int | None = None,
                   factor: str | None = None, project: str | None = None) -> Response:
        """The factor ledger per district × year × factor; with `project`, that project's grants."""
        tables = reads().tables(factor_ledger.Ledger)
        if project is not None:
            return JSON({"project": project,
                         "grants": factor_ledger.project_grants(reads().db, tables, project_code(project))})
        choice("factor", factor, codes.FACTORS)
        return JSON({"rows": factor_ledger.summary(reads().db, tables, district, year, factor)})

    @app.get("/v1/stats/investment", tags=["read models"],
             responses={200: {"model": schemas.InvestmentResponse}, **schemas.PROBLEMS})
    def get_investment(_: Annotated[Principal, Depends(reader)], by: str = "sector", year: int | None = None) -> Response:
        """Planned and completed investment by sector or district, per year."""
        choice("by", by, ("sector", "district"))
        return JSON(investment.statistics(reads().db, reads().tables(investment.Investment), by, year))

    @app.get("/v1/alerts", tags=["read models"],
             responses={200: {"model": schemas.AlertsResponse}, **schemas.PROBLEMS})
    def get_alerts(
        _: Annotated[Principal, Depends(reader)],
        as_of: Annotated[date | None, Query(description="business date; default today (city time)")] = None,
        district: str | None = None, level: str | None = None, rule: str | None = None,
    ) -> Response:
        """Sedimentation alerts (要素沉淀) as of a date, from the read model's facts."""
        choice("level", level, LEVELS)
        choice("rule", rule, RULES)
        when = as_of or today()
        found = sedimentation.alerts(reads().db, reads().tables(sedimentation.Sedimentation), when,
                                     settings.thresholds, district=district, level=level, rule=rule)
        return JSON({"as_of": when, "alerts": [
            {"project_code": a.project_code, "rule": a.rule, "level": a.level, "since": a.since,
             "district": a.district, "detail": a.detail, "ref": a.ref} for a in found]})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics() -> Response:
        """Prometheus text: store head and each read model's lag."""
        lines = ["# TYPE yaosu_store_head gauge", f"yaosu_store_head {ledger.head()}"]
        if read_models is not None:
            report = status(ledger, read_models.catalog)
            lines += ["# TYPE yaosu_projection_lag_events gauge", "# TYPE yaosu_projection_lag_seconds gauge",
                      "# TYPE yaosu_projection_position gauge"]
            for row in report:
                labels = f'projection="{row["projection"]}",generation="{row["generation"]}",state="{row["state"]}"'
                lines += [f"yaosu_projection_lag_events{{{labels}}} {row['lag_events']}",
                          f"yaosu_projection_lag_seconds{{{labels}}} {row['lag_seconds']}",
                          f"yaosu_projection_position{{{labels}}} {row['position']}"]
        head = ledger.head()
        lines += ["# TYPE yaosu_tracked_position gauge", "# TYPE yaosu_tracked_lag gauge"]
        for name, position in sorted(tracked_positions(ledger.recorder).items()):
            lines.append(f'yaosu_tracked_position{{name="{name}"}} {position}')
            if name.startswith("relay:"):
                lines.append(f'yaosu_tracked_lag{{name="{name}"}} {max(head - position, 0)}')
        for name, behind in kafka_lag().items():
            lines.append(f'yaosu_tracked_lag{{name="{name}"}} {behind}')
        return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    def kafka_lag() -> dict[str, int]:
        """Portal messages on each partition past the offset recorded in the store."""
        if not settings.kafka_bootstrap:
            return {}
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        from infra import kafka

        try:
            reader = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000)
        except KafkaError:
            return {}
        try:
            topic = kafka.topic(settings, kafka.PORTAL)
            tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
            ends = reader.end_offsets(tps) if tps else {}
            recorded = tracked_positions(ledger.recorder)
            return {f"kafka:{topic}:{tp.partition}": ends[tp] - 1 - recorded.get(f"kafka:{topic}:{tp.partition}", -1)
                    for tp in tps}
        except KafkaError:
            return {}
        finally:
            reader.close()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            body = schemas.MESSAGES_BODY.json_schema(ref_template="#/components/schemas/{model}")
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(body.pop("$defs", {}))
            components["MessagesBody"] = body
            spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            spec["security"] = [{"bearer": []}]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
