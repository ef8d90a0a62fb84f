"""The floors of the reads at 32 clients: each read's query through a bare Starlette + psycopg endpoint.

    YAOSU_STORE=postgresql://...?schema=... python bench/floor.py PORT

Same server (uvicorn, one process), same connections (a pool of 4, as `projections.read.CONNECTIONS`),
the same SQL over the same tables giving the same rows (statements built from the read models' own
declarations: their columns, their listings' filters and order), the same JSON library
(`infra.presenter.dumps`); no authentication, no snapshot, no decoding into domain events or alerts, no
presentation. What Yaosu adds on top is what each `<read>_req_per_s` and `<read>_p99_ms` pays for:

- history: a project's events and its alert records, in store order (`Ledger.history`);
- alerts: the alert stretches covering the day, the columns each keeps for its listing, its project's name
  among them (`sedimentation.listed_alerts`; the floor neither orders them nor counts the days in, nor
  works out unsettled projects' alerts from their facts);
- stages: the board's rows of the districts asked for (`stages.board`);
- audit: the first page of entries matching the filters, and the names of their projects (`audit.searched`).
"""

from __future__ import annotations

import os
import sys
from datetime import date
from typing import Any, Callable, Sequence

import orjson
import uvicorn
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.alerts import alerts_id
from domain.project import project_id
from infra.clock import city_today
from infra.presenter import dumps
from infra.settings import Settings
from projections.audit import AUDIT, ENTRIES, AuditTrail
from projections.catalog import Catalog
from projections.db import Db
from projections.listing import Listing
from projections.model import Projection, Table
from projections.read import CONNECTIONS
from projections.sedimentation import ALERTS, KEPT, Sedimentation
from projections.stages import BOARD, Stages
from projections.stages import LISTING as STAGES

NOT_FOUND = Response(b'{"code":"not_found"}', status_code=404, media_type="application/json")


def serving_tables(store: str, *projections: type[Projection]) -> dict[str, dict[str, str]]:
    """Each read model's physical tables of its serving generation, found once as the service finds
    them (`Catalog.active`), schema-qualified: the generations do not change while the floor runs."""
    db = Db(Settings.from_env({**os.environ, "YAOSU_STORE": store}))
    try:
        catalog = Catalog(db)
        return {p.name: {t: f"{db.schema}.{name}" for t, name in catalog.active(p).items()} for p in projections}
    finally:
        db.close()


def asked_of(listing: Listing, request: Request) -> dict[str, Any]:
    """The listing's filters from the query string, as the query takes them (a day as a date, a number
    as an int); no bounds checked, no defaults."""
    asked: dict[str, Any] = {}
    for f in listing.filters:
        raw = request.query_params.get(f.name)
        asked[f.name] = None if raw is None else date.fromisoformat(raw) if f.type is date else f.type(raw)
    return asked


def sql(statement: str) -> str:
    return statement.replace("?", "%s")  # the read models' SQL is written with `?` (projections.db.Db.sql)


def app(store: str) -> Starlette:
    base, _, query = store.partition("?")
    schema = dict(part.split("=", 1) for part in query.split("&") if part).get("schema", "public")
    pool = ConnectionPool(base, min_size=CONNECTIONS, max_size=CONNECTIONS, open=True)
    tables = serving_tables(store, Sedimentation, Stages, AuditTrail)
    alerts_t, stages_t, audit_t = tables[Sedimentation.name], tables[Stages.name], tables[AuditTrail.name]
    history_sql = (f"SELECT notification_id, originator_version, topic, state FROM {schema}.yaosu_events "
                   "WHERE originator_id = ANY(%s) ORDER BY notification_id")

    def rows(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with pool.connection() as conn:
            return conn.execute(sql(statement), params).fetchall()

    def as_dicts(table: Table, found: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [dict(zip(table.columns, row)) for row in found]

    def names(table: str, codes: set[str]) -> dict[str, str]:
        if not codes:
            return {}
        return dict(rows(f"SELECT code, name FROM {table} WHERE code = ANY(?)", [sorted(codes)]))

    def history(request: Request) -> Response:
        code = request.path_params["code"]
        found = rows(history_sql, [[project_id(code), alerts_id(code)]])
        if not found:
            return NOT_FOUND
        events = [{"position": p, "version": v, "type": t, "data": orjson.loads(s)} for p, v, t, s in found]
        return Response(dumps({"code": code, "events": events}), media_type="application/json")

    def alerts(request: Request) -> Response:
        asked = asked_of(ALERTS, request)
        day = asked["as_of"] or city_today()
        clauses, params = ALERTS.where(asked)
        # The columns an answer is made of: each stretch keeps its project's name and its detail's words.
        found = [dict(zip(KEPT, row)) for row in rows(
            f"SELECT {', '.join(KEPT)} FROM {alerts_t['stretches']} "
            f"WHERE {' AND '.join(['first_day <= ?', '(last_day IS NULL OR last_day >= ?)', *clauses])}",
            [day, day, *params])]
        return Response(dumps({"as_of": day, "alerts": found}), media_type="application/json")

    def stages(request: Request) -> Response:
        clauses, params = STAGES.where(asked_of(STAGES, request))
        found = as_dicts(BOARD, rows(
            f"SELECT {', '.join(BOARD.columns)} FROM {stages_t['board']} WHERE {' AND '.join(['1 = 1', *clauses])} "
            f"ORDER BY {', '.join(STAGES.order)}", params))
        return Response(dumps({"projects": found}), media_type="application/json")

    def audit(request: Request) -> Response:
        assert AUDIT.paging is not None
        clauses, params = AUDIT.where(asked_of(AUDIT, request))
        found = as_dicts(ENTRIES, rows(
            f"SELECT {', '.join(ENTRIES.columns)} FROM {audit_t['entries']} "
            f"WHERE {' AND '.join([f'{AUDIT.paging.key} > ?', *clauses])} ORDER BY {', '.join(AUDIT.order)} LIMIT ?",
            [0, *params, AUDIT.paging.limit]))
        named = names(audit_t["names"], {row["subject"] for row in found if row["subject"]})
        for row in found:
            row["subject_name"] = named.get(row["subject"] or "")
        return Response(dumps({"entries": found, "next_after": found[-1]["position"] if found else 0}),
                        media_type="application/json")

    routes: list[tuple[str, Callable[[Request], Response]]] = [
        ("/v1/projects/{code}/history", history), ("/v1/alerts", alerts), ("/v1/stages", stages),
        ("/v1/audit", audit)]
    return Starlette(routes=[Route(path, endpoint) for path, endpoint in routes])


if __name__ == "__main__":
    uvicorn.run(app(os.environ["YAOSU_STORE"]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
